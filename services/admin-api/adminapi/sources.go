package adminapi

import adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"

type sourceServer struct {
	adminv1.UnimplementedSourceServiceServer
	*Server
}
