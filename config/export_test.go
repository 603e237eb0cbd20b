package config

// ClearSource forgets where c's fields were read from (tests compare
// configurations read from different text).
func ClearSource(c *Config) { c.src = source{} }
