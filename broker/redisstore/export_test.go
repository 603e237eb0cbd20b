package redisstore

// ListsReplica exposes listsReplica to the tests.
var ListsReplica = listsReplica
