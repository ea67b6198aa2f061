-- The wrk script of benchmarks/serve_bench.py: sends a fixed list of requests, each once.
--
--   wrk -t T -c C -d LIMIT -s serve_bench.lua URL PREFIX
--
-- Thread k (0-based, in the order wrk sets threads up) reads its share of the requests
-- from the file PREFIX..k, one request a line: "METHOD PATH" or "METHOD PATH BODY", the
-- body a JSON document on one line (its own JSON, as serve_bench.py wrote it: read as
-- data, never run). Headers given with -H (the bearer token) go with every request, and
-- Content-Type: application/json with every body.
--
-- Each request of the share is sent once: when a thread has sent its whole share, a
-- connection that asks for another request gets an empty one (wrk writes nothing and
-- the connection waits), and when the share is all answered the thread stops and says so
-- on standard error ("serve_bench: thread done, CPU s " and os.clock(), the CPU time of
-- wrk's process so far), so that the caller need not wait for wrk's -d limit, which
-- remains the bound on time. Any answer outside 2xx is counted.
--
-- done() prints one line, "serve_bench: " and a JSON object: what was sent, answered and
-- refused (the first refusal of each thread, for the message), wrk's own counters
-- (summary and socket errors), and the latency histogram as wrk holds it: pairs
-- [microseconds, count], after wrk's coordinated-omission correction, which the caller
-- undoes (the clients here are a closed loop, and the figures are compared with one that
-- measures each request as it is).

local threads = {}

function setup(thread)
   thread:set("index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local headers = {}
   for name, value in pairs(wrk.headers) do
      headers[name] = value
   end
   queue = {}
   for line in io.lines(args[1] .. index) do
      local method, path, body = line:match("^(%u+) (%S+) ?(.*)$")
      if not method then
         error("serve_bench.lua: not a request line in " .. args[1] .. index)
      end
      local sent_headers = {}
      for name, value in pairs(headers) do
         sent_headers[name] = value
      end
      if body == "" then
         body = nil
      else
         sent_headers["Content-Type"] = "application/json"
      end
      queue[#queue + 1] = wrk.format(method, path, sent_headers, body)
   end
   share = #queue
   sent, answered, refused = 0, 0, 0
   first_refusal = ""
   -- wrk calls request() once on the first thread before it starts, only to check that
   -- the request parses; that request is not sent.
   checking = (index == 0)
end

function request()
   if checking then
      checking = false
      return queue[1]
   end
   if sent >= share then
      return ""
   end
   sent = sent + 1
   return queue[sent]
end

function response(status, headers, body)
   answered = answered + 1
   if status < 200 or status > 299 then
      refused = refused + 1
      if first_refusal == "" then
         first_refusal = status .. " " .. body:sub(1, 200)
      end
   end
   if answered == share then
      io.stderr:write(string.format("serve_bench: thread done, CPU s %.6f\n", os.clock()))
      wrk.thread:stop()
   end
end

local function json_string(text)
   return '"' .. text:gsub('[%c"\\\128-\255]', function(c)
      return string.format("\\u%04x", c:byte())
   end) .. '"'
end

function done(summary, latency, requests)
   local sent_all, answered_all, refused_all, share_all = 0, 0, 0, 0
   local refusals = {}
   for _, thread in ipairs(threads) do
      sent_all = sent_all + thread:get("sent")
      answered_all = answered_all + thread:get("answered")
      refused_all = refused_all + thread:get("refused")
      share_all = share_all + thread:get("share")
      local refusal = thread:get("first_refusal")
      if refusal ~= "" then
         refusals[#refusals + 1] = json_string(refusal)
      end
   end
   local histogram = {}
   for i = 1, #latency do
      local value, count = latency(i)
      histogram[#histogram + 1] = string.format("[%d,%d]", value, count)
   end
   local errors = summary.errors
   io.write(string.format(
      'serve_bench: {"share":%d,"sent":%d,"answered":%d,"refused":%d,"refusals":[%s],'
      .. '"duration_us":%d,"requests":%d,"errors":{"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d},"latency_us":[%s]}\n',
      share_all, sent_all, answered_all, refused_all, table.concat(refusals, ","),
      summary.duration, summary.requests, errors.connect, errors.read, errors.write,
      errors.status, errors.timeout, table.concat(histogram, ",")))
end
