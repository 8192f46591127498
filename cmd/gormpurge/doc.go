// Command gormpurge purges and warms caches from the command line, and
// looks after the durable outbox of the gormpurge library.
//
//	gormpurge purge --akamai-edgerc ~/.edgerc https://www.example.com/ https://www.example.com/about
//	gormpurge purge --http-nodes http://10.0.0.5:6081,http://10.0.0.6:6081 --site-host www.example.com --file urls.txt
//	gormpurge purge --cloudflare --site-host www.example.com /posts/1 /
//	gormpurge purge --fastly --fastly-soft --tags post-1 post-2
//	gormpurge purge --cloudfront-distribution EDFDVBD6EXAMPLE /posts/1 '/posts/*'
//	gormpurge warm --base-url https://www.example.com --concurrency 8 - < paths.txt
//	gormpurge outbox status --driver postgres --dsn "$DATABASE_URL"
//	gormpurge cache purge --redis 10.0.0.7:6379 --redis-prefix blog /posts/1 --tags post-1
//	gormpurge cache clear --nats nats://10.0.0.8:4222 --nats-subject blog
//
// purge sends every object through the library's dispatcher to one
// backend (Akamai, Cloudflare, Fastly, CloudFront, or HTTP caches such as
// Varnish): batched to the backend's limits, retried with backoff, paced
// to the CDN's rate limits. It prints a summary (the ids the CDN returned,
// every failure with its cause) and exits non-zero when anything was not
// purged. CDN API tokens come from the environment variables the CDN's own tools read
// (CLOUDFLARE_API_TOKEN, CLOUDFLARE_ZONE_ID, FASTLY_API_TOKEN,
// FASTLY_SERVICE_ID; for CloudFront, the AWS SDK's default credential
// chain) or from a file flag, never from the command line, where the
// process list would show them.
//
// cache purges or clears the application's own page cache (package
// localcache) on every instance at once, as Django's clear_cache does: a
// shared Redis store (--redis, --redis-prefix), or each instance's memory
// store, by publishing on the bus the instances follow (--redis
// --redis-channel for Redis pub/sub, --nats --nats-subject for NATS). URLs
// and tags are turned into purges by the library's own localcache.Backend,
// so they match exactly what the application's purges match. Redis and
// NATS URLs may hold a password: it is never printed, and
// GORMPURGE_REDIS_URL and GORMPURGE_NATS_URL keep it out of the process
// list.
//
// Exit status: 0 when everything was done; 1 when something failed (an
// object not purged, a page not warmed, a database error); 2 when the
// command line is wrong (no command, an unknown flag, no backend chosen,
// an invalid input), in which case nothing was sent; 130 when interrupted.
//
// Run "gormpurge <command> --help" for each command's flags and examples.
package main
