package event

// Correlation of delivery receipts with the sender commands they report on.
// The email sender puts the command and event ids into SendGrid custom args,
// which SendGrid returns in every Event Webhook event; the SMS sender adds
// the command id to the Twilio status callback URL, which Twilio signs. The
// ingress copies them into the metadata of the receipt events, and the
// senders' own email.sent / sms.sent events carry the same keys.
const (
	// MetaCommandID is the id of the sender command ({event id}:{flow}:{node}).
	MetaCommandID = "command_id"
	// MetaOriginEventID is the id of the event whose flow run produced the command.
	MetaOriginEventID = "origin_event_id"
	// MetaProviderMessageID is the provider's message id (SendGrid
	// X-Message-Id, Twilio message SID).
	MetaProviderMessageID = "provider_message_id"

	// SendGridArgCommandID and SendGridArgEventID are the custom args the
	// email sender sets on every message.
	SendGridArgCommandID = "greentic_command_id"
	SendGridArgEventID   = "greentic_event_id"
	// TwilioCallbackCommandID is the query parameter of the status callback
	// URL naming the command.
	TwilioCallbackCommandID = "greentic_command_id"
)
