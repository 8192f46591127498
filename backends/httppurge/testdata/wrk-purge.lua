-- wrk -s wrk-purge.lua URL: PURGE of a new path on every request,
-- <URL path>/<thread>/<n>, with the Host header of BenchmarkVarnishPurge's
-- site, on keep-alive connections: the same work as the backend's run,
-- which purges distinct URLs too.
wrk.method = "PURGE"
wrk.headers["Host"] = "www.example.test"

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  n = 0
end

function request()
  n = n + 1
  return wrk.format(nil, wrk.path .. "/" .. id .. "/" .. n)
end
