// Package e2e runs Greentic Events in microservices mode on one machine: a
// nats-server process with JetStream and every service as its own OS
// process, each configured through the environment the Helm chart gives its
// container, with fake SendGrid and Twilio servers standing in for the
// providers. The package has only tests; see tests/README.md.
package e2e
