# The README's two commands: `make run` (the demo) and `make test` (everything).
.PHONY: run test build bench check-example

run: ## the click-through demo on the embedded memory store
	go run ./cmd/realmgate dev

test: ## the whole test suite; installs redis-server and Node packages when missing
	./scripts/test.sh

build:
	go build -o bin/realmgate ./cmd/realmgate

bench: ## the load benchmark against a same-run baseline (docs/performance.md)
	go run ./bench

check-example: build
	NOTES_APP_SECRET=x REDIS_PASSWORD=x CONTOSO_ENTRA_SECRET=x FABRIKAM_SECRET=x GITHUB_CLIENT_ID=x \
	GITHUB_CLIENT_SECRET=x GOOGLE_CLIENT_ID=x GOOGLE_CLIENT_SECRET=x \
	./bin/realmgate check-config testdata/config/realmgate.example.yaml
