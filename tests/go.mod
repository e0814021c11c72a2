module github.com/greentic/events/tests

go 1.26.0

replace github.com/greentic/events/pkg => ../pkg
