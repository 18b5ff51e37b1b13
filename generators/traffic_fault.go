package generators

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

// The fault backend: upstream's "injecting faults" recipe (FACTS §13) as
// one line of mesh.cue. A small web server answers every request with the
// fault's status, and the service's routing sends it the fault's share.
const (
	// faultImage runs nginx as a non-root user (uid 101) on port 8080. A
	// patch (mesh.cue patches) points it at a mirror. hack/nginx checks
	// the config with Debian's nginx, 1.22 on bookworm, not 1.28: Debian
	// ships no newer one.
	faultImage = "nginxinc/nginx-unprivileged:1.28-alpine"
	faultUID   = 101
	// faultHTTPPort answers with the fault; faultHealthPort only serves
	// the probes, so that no path of the victim's traffic answers 200.
	faultHTTPPort   = 8080
	faultHealthPort = 8081
	// faultDefaultPort is the fault Service's port when the service
	// declares none (the serviceprofile model, whose dstOverrides name the
	// port). With a port, the fault Service listens on the same one, as the
	// smi adaptor's authorities and HTTPRoute backendRefs expect.
	faultDefaultPort = 80
	faultConfigKey   = "nginx.conf"
	faultConfigDir   = "/etc/nginx/fault"
)

// faultBackends renders the fault backend of every service whose fault
// renders, whatever its model. They go in the extensions stage, so that
// the server is ready before the mesh-config stage shifts traffic to it.
func faultBackends(m *schema.Mesh) []Object {
	var objs []Object
	for _, key := range serviceKeys(m) {
		svc := m.Services[key]
		f := activeFault(svc)
		if f == nil {
			continue
		}
		ns, name, _ := strings.Cut(key, "/")
		objs = append(objs, faultObjects(ns, name, faultServicePort(svc), f.Status)...)
	}
	return objs
}

// faultServicePort is the port the fault Service listens on.
func faultServicePort(svc schema.Service) int32 {
	if svc.Port != 0 {
		return svc.Port
	}
	return faultDefaultPort
}

// faultLabels select the fault backend of one service.
func faultLabels(service string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      faultName(service),
		"app.kubernetes.io/component": "fault",
		"app.kubernetes.io/part-of":   "meshctl",
	}
}

// faultConfig is the whole nginx configuration: the root filesystem is
// read-only, so every path nginx writes is under /tmp (an emptyDir).
func faultConfig(ns, service string, status int) string {
	return fmt.Sprintf(`# meshctl fault backend of %[1]s/%[2]s: every request is answered with %[3]d.
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
events {
  worker_connections 1024;
}
http {
  access_log off;
  client_body_temp_path /tmp/client_body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  default_type text/plain;
  server {
    listen %[4]d;
    location / {
      return %[3]d "fault injected by meshctl for %[1]s/%[2]s";
    }
  }
  server {
    listen %[5]d;
    location = /ready {
      return 200 "ready";
    }
  }
}
`, ns, service, status, faultHTTPPort, faultHealthPort)
}

// faultObjects are the ConfigMap, Deployment and Service of one fault
// backend. The pod is meshed, so the fault's answers travel over mTLS and
// show in the mesh's metrics like any other backend's.
func faultObjects(ns, service string, port int32, status int) []Object {
	name, labels := faultName(service), faultLabels(service)
	cfg := faultConfig(ns, service, status)
	ready := httpProbe("/ready", intstr.FromString("health"))
	container := corev1.Container{
		Name:    "fault",
		Image:   faultImage,
		Command: []string{"nginx", "-c", faultConfigDir + "/" + faultConfigKey, "-g", "daemon off;"},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: faultHTTPPort, Protocol: corev1.ProtocolTCP},
			{Name: "health", ContainerPort: faultHealthPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: ready,
		LivenessProbe:  httpProbe("/ready", intstr.FromString("health")),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		},
		SecurityContext: restrictedContext(faultUID, nil),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: faultConfigDir, ReadOnly: true},
			{Name: "tmp", MountPath: "/tmp"},
		},
	}
	pod := corev1.PodSpec{
		// nginx never calls the API server; the injector mounts the
		// token the proxy's identity needs.
		AutomountServiceAccountToken: ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{container},
		Volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: name},
			}}},
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	return []Object{
		toObject(StageExtensions, gvkConfigMap, &corev1.ConfigMap{
			ObjectMeta: objectMeta(name, ns, labels, nil),
			Data:       map[string]string{faultConfigKey: cfg},
		}),
		toObject(StageExtensions, gvkDeployment, &appsv1.Deployment{
			ObjectMeta: objectMeta(name, ns, labels, nil),
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(1)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					// The checksum rolls the pod when the status changes:
					// nginx reads its configuration only at start.
					ObjectMeta: objectMeta("", "", labels, map[string]string{
						"linkerd.io/inject": "enabled",
						"checksum/config":   sha256Hex([]byte(cfg)),
					}),
					Spec: pod,
				},
			},
		}),
		toObject(StageExtensions, gvkService, &corev1.Service{
			ObjectMeta: objectMeta(name, ns, labels, nil),
			Spec: corev1.ServiceSpec{
				Selector: labels,
				Ports: []corev1.ServicePort{{
					Name: "http", Port: port, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP,
				}},
			},
		}),
	}
}
