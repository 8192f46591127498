// Package redisstore keeps the pages of [localcache.Middleware] in Redis,
// shared by every instance of an application, and carries purges between
// instances that keep pages in memory over Redis pub/sub.
package redisstore
