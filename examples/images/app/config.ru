# The whole demo app: a health check for the target group and one page.
require "json"

VERSION = ENV.fetch("APP_COMMIT", "unknown")

app = lambda do |env|
  case env["PATH_INFO"]
  when "/health"
    [200, { "content-type" => "application/json" }, [JSON.generate(status: "ok", commit: VERSION)]]
  else
    [200, { "content-type" => "text/plain" }, ["Hello from an immutable server (#{VERSION})\n"]]
  end
end

run app
