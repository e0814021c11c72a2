module github.com/greentic/events/services/flow-executor

go 1.26.0

require github.com/greentic/events/pkg v0.0.0

replace github.com/greentic/events/pkg => ../../pkg
