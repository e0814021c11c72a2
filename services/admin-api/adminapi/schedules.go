package adminapi

import adminv1 "github.com/greentic/events/pkg/gen/greentic/admin/v1"

type scheduleServer struct {
	adminv1.UnimplementedScheduleServiceServer
	*Server
}
