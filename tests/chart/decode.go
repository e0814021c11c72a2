package chart

import (
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// strictDecoder decodes YAML into the registered Go type of its
// apiVersion and kind, failing on unknown and duplicate fields.
var strictDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, monitoringv1.AddToScheme, addKEDA} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true})
}()

// KEDA's types live in github.com/kedacore/keda/v2, whose module pulls in
// every scaler's SDK (cloud providers, databases). What follows mirrors the
// fields of keda.sh/v1alpha1 ScaledObject that the chart may set, with
// KEDA's JSON names (apis/keda/v1alpha1/scaledobject_types.go and
// scaletriggers_types.go, KEDA v2.x), so the chart's ScaledObjects are
// decoded as strictly as the built-in kinds: a field KEDA does not know
// fails.

var kedaGroupVersion = schema.GroupVersion{Group: "keda.sh", Version: "v1alpha1"}

func addKEDA(s *runtime.Scheme) error {
	s.AddKnownTypes(kedaGroupVersion, &ScaledObject{})
	metav1.AddToGroupVersion(s, kedaGroupVersion)
	return nil
}

// ScaledObject mirrors keda.sh/v1alpha1 ScaledObject.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec mirrors KEDA's ScaledObjectSpec (without status).
type ScaledObjectSpec struct {
	ScaleTargetRef        *ScaleTarget    `json:"scaleTargetRef"`
	PollingInterval       *int32          `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32          `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32          `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32          `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32          `json:"maxReplicaCount,omitempty"`
	Advanced              *AdvancedConfig `json:"advanced,omitempty"`
	Triggers              []ScaleTriggers `json:"triggers"`
	Fallback              *Fallback       `json:"fallback,omitempty"`
}

// ScaleTarget mirrors KEDA's ScaleTarget.
type ScaleTarget struct {
	Name                   string `json:"name"`
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// AdvancedConfig mirrors KEDA's AdvancedConfig.
type AdvancedConfig struct {
	HorizontalPodAutoscalerConfig *HorizontalPodAutoscalerConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool                           `json:"restoreToOriginalReplicaCount,omitempty"`
}

// HorizontalPodAutoscalerConfig mirrors KEDA's HorizontalPodAutoscalerConfig.
type HorizontalPodAutoscalerConfig struct {
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
	Name     string                                         `json:"name,omitempty"`
}

// ScaleTriggers mirrors KEDA's ScaleTriggers: metadata values are strings.
type ScaleTriggers struct {
	Type              string                         `json:"type"`
	Name              string                         `json:"name,omitempty"`
	UseCachedMetrics  bool                           `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string              `json:"metadata"`
	AuthenticationRef *AuthenticationRef             `json:"authenticationRef,omitempty"`
	MetricType        autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// AuthenticationRef mirrors KEDA's AuthenticationRef.
type AuthenticationRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// Fallback mirrors KEDA's Fallback.
type Fallback struct {
	FailureThreshold int32  `json:"failureThreshold"`
	Replicas         int32  `json:"replicas"`
	Behavior         string `json:"behavior,omitempty"`
}

// DeepCopyObject implements runtime.Object.
func (in *ScaledObject) DeepCopyObject() runtime.Object {
	out := *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	s := in.Spec
	if s.ScaleTargetRef != nil {
		t := *s.ScaleTargetRef
		s.ScaleTargetRef = &t
	}
	for _, p := range []**int32{&s.PollingInterval, &s.InitialCooldownPeriod, &s.CooldownPeriod, &s.IdleReplicaCount, &s.MinReplicaCount, &s.MaxReplicaCount} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	if s.Advanced != nil {
		a := *s.Advanced
		if a.HorizontalPodAutoscalerConfig != nil {
			h := *a.HorizontalPodAutoscalerConfig
			if h.Behavior != nil {
				h.Behavior = h.Behavior.DeepCopy()
			}
			a.HorizontalPodAutoscalerConfig = &h
		}
		s.Advanced = &a
	}
	if s.Triggers != nil {
		s.Triggers = make([]ScaleTriggers, len(in.Spec.Triggers))
		for i, t := range in.Spec.Triggers {
			if t.Metadata != nil {
				m := make(map[string]string, len(t.Metadata))
				for k, v := range t.Metadata {
					m[k] = v
				}
				t.Metadata = m
			}
			if t.AuthenticationRef != nil {
				r := *t.AuthenticationRef
				t.AuthenticationRef = &r
			}
			s.Triggers[i] = t
		}
	}
	if s.Fallback != nil {
		f := *s.Fallback
		s.Fallback = &f
	}
	out.Spec = s
	return &out
}
