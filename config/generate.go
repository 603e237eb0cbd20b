package config

// docs/configuration.md is generated from the structs of this package.
//go:generate go run ../internal/configref -config . -out ../docs/configuration.md
