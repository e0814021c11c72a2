package ingress

import (
	"errors"
	"net/http"

	"github.com/greentic/events/services/ingress-webhook/cloudevents"
)

// cloudEventsKind accepts the three CloudEvents HTTP modes.
func cloudEventsKind(h http.Header) (bodyKind, *apiError) {
	if cloudevents.Mode(h) == "" {
		return 0, fail(http.StatusUnsupportedMediaType, codeUnsupportedMedia,
			"not a CloudEvent: send binary mode (ce-* headers) or Content-Type %s or %s", cloudevents.MediaTypeStructured, cloudevents.MediaTypeBatch)
	}
	return bodyJSON, nil
}

// extractCloudEvents maps CloudEvents 1:1 to events. The delivery id is
// source and id, which the CloudEvents spec makes unique per event.
func (h *Handler) extractCloudEvents(req *request) ([]incoming, bool, *apiError) {
	evs, err := cloudevents.Parse(req.r.Header, req.body, req.src.Tenant, h.now(), cloudevents.Limits{MaxBatch: h.cfg.MaxEventsPerRequest})
	if err != nil {
		if errors.Is(err, cloudevents.ErrUnsupportedMedia) {
			return nil, false, fail(http.StatusUnsupportedMediaType, codeUnsupportedMedia, "%v", err)
		}
		return nil, false, fail(http.StatusBadRequest, codeInvalidEvent, "%v", err)
	}
	out := make([]incoming, len(evs))
	for i, ev := range evs {
		out[i] = incoming{ev: ev, deliveryID: ev.Source + " " + ev.Id}
	}
	return out, cloudevents.Mode(req.r.Header) == cloudevents.ModeBatch, nil
}
