// Package sender is the delivery loop shared by the email and SMS senders:
// it consumes commands from greentic.outbound.{env}.{tenant}.{channel},
// sends each through a Provider at most once, and reports the outcome as
// {channel}.sent, {channel}.failed or {channel}.captured events of the
// tenant.
//
// Each command's state is kept in the sends bucket under its tenant and id,
// and written before the command is acknowledged:
//
//	(none) ──claim──▶ sending ──answer──▶ sent | retry | failed
//
// A command redelivered after a crash is never sent twice: a sent record
// republishes the sent event and acknowledges; a failed record dead-letters
// again. A sending record whose attempt can no longer be running means the
// sender stopped between the provider's answer and the record, so whether
// the provider accepted the message is unknown: the UnknownOutcome policy
// decides (dead-letter it as outcome_unknown, the default, or send again).
// The claim is a revision-checked write, so two replicas handed the same
// command never both send it.
//
// A dead letter replayed through the admin API carries its replay marker
// (bus.HeaderReplay). A replay of a command whose record is failed (which
// includes a dead-lettered outcome_unknown) claims it again, recording the
// marker, and sends it with a fresh count of attempts; its failed event, if
// it fails again, has the id {command id}:failed/replay/{marker}, and its
// dead letter is a new one. A sent record answers a replay like any
// redelivery (the sent event again, no second send), and a failed record
// that carries the delivery's own marker answers it too, so a replay that
// fails again does not loop.
package sender
