package redisstore

// LoneMasters exposes loneMasters to the tests.
var LoneMasters = loneMasters
