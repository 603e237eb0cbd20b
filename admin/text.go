package admin

import "fmt"

// count is n and the noun, plural unless n is 1: "1 tenant", "2 tenants".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
