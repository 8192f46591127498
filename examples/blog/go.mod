module github.com/gormpurge/gormpurge/examples/blog

go 1.26.0

require (
	github.com/gormpurge/gormpurge v0.0.0-00010101000000-000000000000
	github.com/gormpurge/gormpurge/backends/localcache/natsbus v0.0.0-00010101000000-000000000000
	github.com/gormpurge/gormpurge/backends/localcache/redisstore v0.0.0-00010101000000-000000000000
	github.com/gormpurge/gormpurge/contrib/otelpurge v0.0.0-00010101000000-000000000000
	github.com/gormpurge/gormpurge/contrib/prompurge v0.0.0-00010101000000-000000000000
	github.com/nats-io/nats.go v1.56.0
	github.com/prometheus/client_golang v1.25.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/stretchr/testify v1.12.1
	go.opentelemetry.io/otel v1.47.0
	go.opentelemetry.io/otel/exporters/stdout/stdouttrace v1.47.0
	go.opentelemetry.io/otel/metric v1.47.0
	go.opentelemetry.io/otel/sdk v1.47.0
	go.opentelemetry.io/otel/trace v1.47.0
	gorm.io/driver/sqlite v1.6.0
	gorm.io/gorm v1.31.2
)

require (
	github.com/akamai/AkamaiOPEN-edgegrid-golang/v8 v8.4.0 // indirect
	github.com/andres-erbsen/clock v0.0.0-20160526145045-9e14626cd129 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	github.com/jinzhu/inflection v1.0.0 // indirect
	github.com/jinzhu/now v1.1.5 // indirect
	github.com/klauspost/compress v1.20.1 // indirect
	github.com/mattn/go-sqlite3 v1.14.22 // indirect
	github.com/mitchellh/go-homedir v1.1.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.uber.org/ratelimit v0.2.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	golang.org/x/time v0.15.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/ini.v1 v1.51.1 // indirect
)

replace github.com/gormpurge/gormpurge => ../..

replace github.com/gormpurge/gormpurge/backends/localcache/redisstore => ../../backends/localcache/redisstore

replace github.com/gormpurge/gormpurge/backends/localcache/natsbus => ../../backends/localcache/natsbus

replace github.com/gormpurge/gormpurge/contrib/prompurge => ../../contrib/prompurge

replace github.com/gormpurge/gormpurge/contrib/otelpurge => ../../contrib/otelpurge
