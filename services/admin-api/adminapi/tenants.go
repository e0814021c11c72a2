package adminapi

import adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"

type tenantServer struct {
	adminv1.UnimplementedTenantServiceServer
	*Server
}
