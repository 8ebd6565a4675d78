# Puma behind the load balancer: one process per core, plain HTTP on 8080.
workers Integer(ENV.fetch("WEB_CONCURRENCY", 2))
threads 5, 5
port 8080
environment "production"
preload_app!
