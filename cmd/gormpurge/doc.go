// Command gormpurge purges and warms caches from the command line, and
// looks after the durable outbox of the gormpurge library.
//
//	gormpurge purge --akamai-edgerc ~/.edgerc https://www.example.com/ https://www.example.com/about
//	gormpurge purge --http-nodes http://10.0.0.5:6081,http://10.0.0.6:6081 --site-host www.example.com --file urls.txt
//	gormpurge warm --base-url https://www.example.com --concurrency 8 - < paths.txt
//	gormpurge outbox status --driver postgres --dsn "$DATABASE_URL"
//
// purge sends every object through the library's dispatcher: batched to
// each backend's limits, retried with backoff, paced to Akamai's rate
// limits. It prints a summary (the ids Akamai returned, every failure with
// its cause) and exits non-zero when anything was not purged.
//
// Exit status: 0 when everything was done; 1 when something failed (an
// object not purged, a page not warmed, a database error); 2 when the
// command line is wrong (no command, an unknown flag, no backend chosen,
// an invalid input), in which case nothing was sent; 130 when interrupted.
//
// Run "gormpurge <command> --help" for each command's flags and examples.
package main
