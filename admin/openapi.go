package admin

import (
	_ "embed" // the OpenAPI document
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPI is the OpenAPI 3.1 document of the admin API, kept in the
// repository as admin/openapi.yaml and served at /v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

func (s *Service) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", OpenAPI)
}
