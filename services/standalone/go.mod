module github.com/greentic/events/services/standalone

go 1.26.0

require (
	github.com/greentic/events/pkg v0.0.0
	github.com/greentic/events/services/flow-executor v0.0.0
	github.com/greentic/events/services/ingress-webhook v0.0.0
)

replace (
	github.com/greentic/events/pkg => ../../pkg
	github.com/greentic/events/services/flow-executor => ../flow-executor
	github.com/greentic/events/services/ingress-webhook => ../ingress-webhook
)
