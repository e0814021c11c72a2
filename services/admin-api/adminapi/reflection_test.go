package adminapi

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestGenericClientThroughReflection does what grpcurl does (see the
// README): it learns the API through server reflection only, with no
// generated code, and calls CreateTenant and GetTenant with messages built
// from the descriptors it received.
func TestGenericClientThroughReflection(t *testing.T) {
	h := newHarness(t)
	// Reflection needs no token.
	stream, err := rpb.NewServerReflectionClient(h.anonymous.conn).ServerReflectionInfo(h.anonymous.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := res.GetErrorResponse(); e != nil {
			t.Fatalf("reflection: %s", e.GetErrorMessage())
		}
		return res
	}
	var services []string
	for _, s := range ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"greentic.admin.v1.TenantService", "greentic.admin.v1.SourceService", "greentic.admin.v1.FlowService", "greentic.admin.v1.ScheduleService", "greentic.admin.v1.DeadLetterService", "grpc.health.v1.Health"} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection does not list %s (lists %v)", want, services)
		}
	}
	res := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "greentic.admin.v1.TenantService"}})
	set := &descriptorpb.FileDescriptorSet{}
	for _, raw := range res.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(raw, fd); err != nil {
			t.Fatal(err)
		}
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("descriptors from reflection do not resolve: %v", err)
	}
	d, err := files.FindDescriptorByName("greentic.admin.v1.TenantService")
	if err != nil {
		t.Fatal(err)
	}
	svc := d.(protoreflect.ServiceDescriptor)
	call := func(c *client, method, in string) (*dynamicpb.Message, error) {
		t.Helper()
		md := svc.Methods().ByName(protoreflect.Name(method))
		if md == nil {
			t.Fatalf("no method %s", method)
		}
		req := dynamicpb.NewMessage(md.Input())
		if err := protojson.Unmarshal([]byte(in), req); err != nil {
			t.Fatal(err)
		}
		out := dynamicpb.NewMessage(md.Output())
		err := c.conn.Invoke(c.ctx(t), "/"+string(svc.FullName())+"/"+method, req, out)
		return out, err
	}
	out, err := call(h.operator, "CreateTenant", `{"tenant": {"id": "globex", "display_name": "Globex"}}`)
	if err != nil {
		t.Fatalf("CreateTenant through reflection: %v", err)
	}
	js, _ := protojson.Marshal(out)
	if got := out.Get(out.Descriptor().Fields().ByName("tenant")).Message(); got.Get(got.Descriptor().Fields().ByName("display_name")).String() != "Globex" {
		t.Fatalf("CreateTenant answered %s", js)
	}
	if _, err := call(h.operator, "GetTenant", `{"id": "globex"}`); err != nil {
		t.Fatalf("GetTenant through reflection: %v", err)
	}
	// The token is still required for the API itself.
	_, err = call(h.anonymous, "GetTenant", `{"id": "globex"}`)
	wantCode(t, err, codes.Unauthenticated)
}
