vcl 4.1;
# Varnish 7.1 test configuration, rendered by cachetest with text/template.
# Caches everything the origin sends; accepts purges from 127.0.0.1 and ::1
# only:
#
#   PURGE /path                          -> return(purge): "200 Purged", hit or
#                                           miss; every Vary variant goes
#   PURGE /path  + X-Purge-Strict: 1     -> vmod_purge: 200 "Purged" on a hit,
#                                           404 "Not in cache" on a miss
#   PURGE /any   + xkey-purge: k1 k2     -> xkey.purge(): 200 "Invalidated N objects"
#   PURGE /any   + xkey-softpurge: k1 k2 -> xkey.softpurge(): same answer
#   BAN   /any   + X-Ban-Tags: <regex>   -> ban on the objects' xkey header
#   BAN   /any   + X-Ban-Url: <regex>    -> ban on the objects' URL
#   a purge or ban from any other client -> 405 "Not allowed."
#
# X-Cache: HIT or MISS shows what the cache did; the key is Host + URL.
import std;
import xkey;
import purge;

backend origin {
    .host = "{{.OriginHost}}";
    .port = "{{.OriginPort}}";
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE" || req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed."));
        }
    }
    if (req.method == "PURGE") {
        if (req.http.xkey-purge) {
            set req.http.X-Purged = xkey.purge(req.http.xkey-purge);
            return (synth(200, "Invalidated " + req.http.X-Purged + " objects"));
        }
        if (req.http.xkey-softpurge) {
            set req.http.X-Purged = xkey.softpurge(req.http.xkey-softpurge);
            return (synth(200, "Invalidated " + req.http.X-Purged + " objects"));
        }
        if (req.http.X-Purge-Strict) {
            return (hash);
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (req.http.X-Ban-Tags) {
            if (std.ban("obj.http.xkey ~ " + req.http.X-Ban-Tags)) {
                return (synth(200, "Ban added"));
            }
            return (synth(400, std.ban_error()));
        }
        if (req.http.X-Ban-Url) {
            if (std.ban("obj.http.x-url ~ " + req.http.X-Ban-Url)) {
                return (synth(200, "Ban added"));
            }
            return (synth(400, std.ban_error()));
        }
        return (synth(400, "X-Ban-Tags or X-Ban-Url header required"));
    }
    if (req.url ~ "^/__origin/") {
        return (pass);
    }
    unset req.http.Cookie;
    unset req.http.Authorization;
}

sub strict_purge {
    set req.http.X-Purged = purge.hard();
    if (req.http.X-Purged == "0") {
        return (synth(404, "Not in cache"));
    }
    return (synth(200, "Purged"));
}

sub vcl_hit {
    if (req.method == "PURGE") {
        call strict_purge;
    }
}

sub vcl_miss {
    if (req.method == "PURGE") {
        call strict_purge;
    }
}

sub vcl_backend_response {
    set beresp.http.x-url = bereq.url;
}

sub vcl_deliver {
    unset resp.http.x-url;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

sub vcl_synth {
    if (req.http.X-Purged) {
        set resp.http.X-Purged = req.http.X-Purged;
    }
}
