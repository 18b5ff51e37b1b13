package schema

// Mesh is the decoded, fully defaulted content of a mesh.cue. Its shape
// mirrors mesh.cue in this package, which owns every default and constraint.
type Mesh struct {
	Linkerd      Linkerd              `json:"linkerd"`
	ControlPlane ControlPlane         `json:"controlPlane"`
	CNI          CNI                  `json:"cni"`
	Viz          Viz                  `json:"viz"`
	Tracing      Tracing              `json:"tracing"`
	Namespaces   map[string]Namespace `json:"namespaces"`
	Services     map[string]Service   `json:"services"`
	Clusters     map[string]Cluster   `json:"clusters"`
	Links        []Link               `json:"links"`
	Patches      []Patch              `json:"patches"`
	Prune        Prune                `json:"prune"`
}

// Prune bounds what one apply may prune.
type Prune struct {
	// MaxDeletions is a count ("10") or a percentage of the inventory
	// ("50%"); "" leaves apply's default.
	MaxDeletions string `json:"maxDeletions,omitempty"`
}

// Linkerd selects the release and the cluster-wide settings it needs.
type Linkerd struct {
	Version           string   `json:"version"`
	Registry          string   `json:"registry"`
	ImagePullPolicy   string   `json:"imagePullPolicy"`
	ClusterDomain     string   `json:"clusterDomain"`
	ClusterNetworks   []string `json:"clusterNetworks"`
	InstallGatewayAPI bool     `json:"installGatewayAPI"`
}

// ControlPlane configures identity, destination and the proxy injector.
type ControlPlane struct {
	HA                   bool               `json:"ha"`
	Replicas             int                `json:"replicas"`
	WebhookFailurePolicy string             `json:"webhookFailurePolicy"`
	PodAntiAffinity      bool               `json:"podAntiAffinity"`
	PodDisruptionBudget  bool               `json:"podDisruptionBudget"`
	LogLevel             string             `json:"logLevel"`
	LogFormat            string             `json:"logFormat"`
	Resources            ComponentResources `json:"resources"`
	Proxy                Proxy              `json:"proxy"`
	Identity             Identity           `json:"identity"`
	Heartbeat            Heartbeat          `json:"heartbeat"`
	PrometheusURL        string             `json:"prometheusUrl"`
	LabelKubeSystem      bool               `json:"labelKubeSystem"`
}

// ComponentResources holds the resources of each controller container.
type ComponentResources struct {
	Identity      Resources `json:"identity"`
	Destination   Resources `json:"destination"`
	ProxyInjector Resources `json:"proxyInjector"`
	Heartbeat     Resources `json:"heartbeat"`
}

// Resources are one container's requests and limits; empty strings are unset.
type Resources struct {
	CPU              RequestLimit `json:"cpu"`
	Memory           RequestLimit `json:"memory"`
	EphemeralStorage RequestLimit `json:"ephemeralStorage"`
}

// RequestLimit is a request and a limit of one resource.
type RequestLimit struct {
	Request string `json:"request,omitempty"`
	Limit   string `json:"limit,omitempty"`
}

// Proxy holds the defaults of every injected linkerd-proxy.
type Proxy struct {
	LogLevel             string     `json:"logLevel"`
	LogFormat            string     `json:"logFormat"`
	Resources            Resources  `json:"resources"`
	DefaultInboundPolicy string     `json:"defaultInboundPolicy"`
	OpaquePorts          []string   `json:"opaquePorts"`
	SkipInboundPorts     []string   `json:"skipInboundPorts"`
	SkipOutboundPorts    []string   `json:"skipOutboundPorts"`
	KubeAPIServerPorts   []string   `json:"kubeAPIServerPorts"`
	Ports                ProxyPorts `json:"ports"`
	UID                  int64      `json:"uid"`
	Await                bool       `json:"await"`
	NativeSidecar        bool       `json:"nativeSidecar"`
	IptablesMode         string     `json:"iptablesMode"`
}

// ProxyPorts are the proxy's listening ports.
type ProxyPorts struct {
	Admin    int32 `json:"admin"`
	Control  int32 `json:"control"`
	Inbound  int32 `json:"inbound"`
	Outbound int32 `json:"outbound"`
}

// Identity configures the trust domain and where certificates come from.
type Identity struct {
	TrustDomain        string      `json:"trustDomain"`
	IssuanceLifetime   string      `json:"issuanceLifetime"`
	ClockSkewAllowance string      `json:"clockSkewAllowance"`
	TrustAnchor        TrustAnchor `json:"trustAnchor"`
	Issuer             Issuer      `json:"issuer"`
}

// Certificate sources, as mesh.cue names them.
const (
	SourceGenerated   = "generated"
	SourceSecret      = "secret"
	SourcePEM         = "pem"
	SourceExternal    = "external"
	SourceCertManager = "certManager"
)

// TrustAnchor says where the identity trust anchor comes from.
type TrustAnchor struct {
	Source    string     `json:"source"`
	SecretRef *SecretRef `json:"secretRef,omitempty"`
	PEM       string     `json:"pem,omitempty"`
	// KeyCluster, with clusters and a generated anchor, is the cluster
	// whose certificate store keeps the fleet anchor's key.
	KeyCluster string `json:"keyCluster,omitempty"`
}

// SecretRef points at a key of an existing Secret.
type SecretRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

// Issuer says where the identity issuer certificate comes from.
type Issuer struct {
	Source string `json:"source"`
	Scheme string `json:"scheme"`
	// RotateBefore is how long before expiry a generated issuer is
	// re-signed; empty for the default (see certs.RotateThreshold).
	RotateBefore string       `json:"rotateBefore,omitempty"`
	CertManager  *CertManager `json:"certManager,omitempty"`
}

// CertManager configures a cert-manager Certificate for the issuer.
type CertManager struct {
	IssuerRef   IssuerRef `json:"issuerRef"`
	Duration    string    `json:"duration"`
	RenewBefore string    `json:"renewBefore"`
}

// IssuerRef names a cert-manager Issuer or ClusterIssuer.
type IssuerRef struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Group string `json:"group"`
}

// Heartbeat configures the linkerd-heartbeat CronJob.
type Heartbeat struct {
	Enabled  bool   `json:"enabled"`
	Schedule string `json:"schedule"`
}

// CNI configures the linkerd-cni DaemonSet.
type CNI struct {
	Enabled           bool     `json:"enabled"`
	LogLevel          string   `json:"logLevel"`
	DestCNINetDir     string   `json:"destCNINetDir"`
	DestCNIBinDir     string   `json:"destCNIBinDir"`
	RedirectPorts     []int32  `json:"redirectPorts"`
	SkipInboundPorts  []string `json:"skipInboundPorts"`
	SkipOutboundPorts []string `json:"skipOutboundPorts"`
	Image             Image    `json:"image"`
}

// Image is an image name (under the registry) and version.
type Image struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Viz configures the viz extension.
type Viz struct {
	Enabled    bool       `json:"enabled"`
	HA         bool       `json:"ha"`
	Prometheus Prometheus `json:"prometheus"`
	Grafana    Grafana    `json:"grafana"`
	JaegerURL  string     `json:"jaegerUrl,omitempty"`
}

// Prometheus configures viz's Prometheus or an external one.
type Prometheus struct {
	ExternalURL      string            `json:"externalURL,omitempty"`
	Operator         bool              `json:"operator"`
	PodMonitorLabels map[string]string `json:"podMonitorLabels,omitempty"`
	Retention        Retention         `json:"retention"`
	ExpectedPods     int               `json:"expectedPods"`
	Resources        Resources         `json:"resources"`
}

// Retention is Prometheus's time and size retention.
type Retention struct {
	Time string `json:"time"`
	Size string `json:"size,omitempty"`
}

// Grafana configures Grafana and the dashboards meshctl authors.
type Grafana struct {
	Enabled    bool            `json:"enabled"`
	URL        string          `json:"url,omitempty"`
	Namespace  string          `json:"namespace"`
	Dashboards map[string]bool `json:"dashboards"`
}

// Tracing configures mesh-wide distributed tracing.
type Tracing struct {
	Enabled      bool      `json:"enabled"`
	Collector    Collector `json:"collector"`
	Sampling     float64   `json:"sampling"`
	Protocol     string    `json:"protocol"`
	ServiceName  string    `json:"serviceName"`
	ControlPlane bool      `json:"controlPlane"`
	Namespaces   []string  `json:"namespaces"`
}

// Collector is the trace collector proxies send spans to.
type Collector struct {
	Deploy         bool      `json:"deploy"`
	Namespace      string    `json:"namespace"`
	ServiceAccount string    `json:"serviceAccount"`
	Endpoint       string    `json:"endpoint"`
	Image          string    `json:"image"`
	JaegerImage    string    `json:"jaegerImage"`
	Resources      Resources `json:"resources"`
}

// Namespace is a namespace to mesh.
type Namespace struct {
	Inject      string          `json:"inject"`
	Create      bool            `json:"create"`
	SafeToEvict *bool           `json:"safeToEvict,omitempty"`
	Proxy       *NamespaceProxy `json:"proxy,omitempty"`
}

// NamespaceProxy overrides proxy settings for one namespace.
type NamespaceProxy struct {
	LogLevel          string     `json:"logLevel,omitempty"`
	OpaquePorts       []string   `json:"opaquePorts,omitempty"`
	SkipInboundPorts  []string   `json:"skipInboundPorts,omitempty"`
	SkipOutboundPorts []string   `json:"skipOutboundPorts,omitempty"`
	Resources         *Resources `json:"resources,omitempty"`
}

// Service is everything about one Service, keyed "namespace/name".
type Service struct {
	Model       string         `json:"model"`
	Port        int32          `json:"port,omitempty"`
	Routes      []Route        `json:"routes"`
	RetryBudget *RetryBudget   `json:"retryBudget,omitempty"`
	Split       map[string]int `json:"split"`
	Fault       *Fault         `json:"fault,omitempty"`
	Export      string         `json:"export,omitempty"`
	Rollout     *Rollout       `json:"rollout,omitempty"`
}

// Rollout moves a service's split from one backend to the other in steps,
// while the candidate's metrics hold up against the primary's.
type Rollout struct {
	From             string   `json:"from"`
	To               string   `json:"to"`
	FromDeployment   string   `json:"fromDeployment"`
	ToDeployment     string   `json:"toDeployment"`
	Steps            []int    `json:"steps"`
	Interval         string   `json:"interval"`
	Analysis         Analysis `json:"analysis"`
	ProgressDeadline string   `json:"progressDeadline"`
	PrometheusURL    string   `json:"prometheusURL,omitempty"`
}

// Analysis is how a rollout judges its candidate against its primary.
type Analysis struct {
	SuccessRate struct {
		MaxDrop float64 `json:"maxDrop"` // percentage points
	} `json:"successRate"`
	LatencyP99 struct {
		MaxIncrease string `json:"maxIncrease"` // "10%"
	} `json:"latencyP99"`
	MinRequests  int     `json:"minRequests"`
	FailureLimit int     `json:"failureLimit"`
	Confidence   float64 `json:"confidence"`
}

// Route is one route of a service: an HTTPRoute rule or a ServiceProfile
// route, as its model says.
type Route struct {
	Name            string          `json:"name"`
	Method          string          `json:"method,omitempty"`
	PathRegex       string          `json:"pathRegex"`
	IsRetryable     bool            `json:"isRetryable"`
	Timeout         string          `json:"timeout,omitempty"`
	ResponseClasses []ResponseClass `json:"responseClasses"`
}

// ResponseClass classifies responses of a route.
type ResponseClass struct {
	Condition ResponseCondition `json:"condition"`
	IsFailure bool              `json:"isFailure"`
}

// ResponseCondition matches responses by status range.
type ResponseCondition struct {
	Status *StatusRange `json:"status,omitempty"`
}

// StatusRange is an inclusive HTTP status range.
type StatusRange struct {
	Min int `json:"min,omitempty"`
	Max int `json:"max,omitempty"`
}

// RetryBudget limits retries of a ServiceProfile.
type RetryBudget struct {
	RetryRatio          float64 `json:"retryRatio"`
	MinRetriesPerSecond int     `json:"minRetriesPerSecond"`
	TTL                 string  `json:"ttl"`
}

// Fault injects HTTP errors into a share of a Service's requests.
type Fault struct {
	Percent float64 `json:"percent"`
	Status  int     `json:"status"`
}

// Cluster is one cluster of a multicluster mesh.
type Cluster struct {
	Context string  `json:"context"`
	Gateway Gateway `json:"gateway"`
	HA      bool    `json:"ha"`
}

// Gateway configures a cluster's multicluster gateway.
type Gateway struct {
	Enabled      bool   `json:"enabled"`
	ServiceType  string `json:"serviceType"`
	Port         int32  `json:"port"`
	ProbePort    int32  `json:"probePort"`
	ProbeSeconds int    `json:"probeSeconds"`
}

// Link mirrors services of cluster To into cluster From.
type Link struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Gateway bool   `json:"gateway"`
}

// Patch is a kustomize-style patch of rendered objects.
type Patch struct {
	Target PatchTarget `json:"target"`
	Patch  string      `json:"patch"`
	// Pos is where the patch is written ("file:line:col"), for errors
	// found when it is applied; the loader fills it.
	Pos string `json:"-"`
}

// PatchTarget selects the objects a patch applies to.
type PatchTarget struct {
	Group         string `json:"group,omitempty"`
	Version       string `json:"version,omitempty"`
	Kind          string `json:"kind,omitempty"`
	Name          string `json:"name,omitempty"`
	Namespace     string `json:"namespace,omitempty"`
	LabelSelector string `json:"labelSelector,omitempty"`
}
