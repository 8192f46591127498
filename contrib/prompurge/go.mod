module github.com/gormpurge/gormpurge/contrib/prompurge

go 1.26.0

require github.com/gormpurge/gormpurge v0.0.0-00010101000000-000000000000

replace github.com/gormpurge/gormpurge => ../..
