package adminapi

import adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"

type flowServer struct {
	adminv1.UnimplementedFlowServiceServer
	*Server
}
