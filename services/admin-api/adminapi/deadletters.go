package adminapi

import adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"

type deadLetterServer struct {
	adminv1.UnimplementedDeadLetterServiceServer
	*Server
}
