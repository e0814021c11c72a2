// Package tests holds the checks that span the whole product rather than
// one service: the Helm chart (package chart) and the microservices-mode
// end-to-end test, every service its own OS process (package e2e).
package tests
