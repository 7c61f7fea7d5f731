using Supervisor.Configuration;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.SessionAffinity;

namespace Supervisor.Proxy;

/// <summary>
/// YARP's view of the workers: one route to one cluster whose destinations are the workers in rotation,
/// each reached at <c>http://KEY/</c> (the key names its Unix socket). Replaced as a whole on every change;
/// YARP applies it before <see cref="Publish"/> returns.
/// </summary>
internal sealed class WorkerDestinations
{
    public const string ClusterId = "workers";

    /// <summary>The cookie that carries a client's worker under --sticky-sessions.</summary>
    public const string AffinityCookieName = ".Supervisor.Worker";

    private const string RouteId = "all";

    // Without --request-timeout a request may take as long as it needs, like behind Gunicorn; YARP's
    // own idle limit (100 s by default) would otherwise cut long polls and quiet streams.
    private static readonly TimeSpan NoRequestTimeout = TimeSpan.FromDays(1);

    private static readonly IReadOnlyList<RouteConfig> Routes =
    [
        new RouteConfig { RouteId = RouteId, ClusterId = ClusterId, Match = new RouteMatch { Path = "{**catch-all}" } },
    ];

    private readonly WorkerProtocolVersion _protocol;
    private readonly SessionAffinityConfig? _affinity;
    private IReadOnlyCollection<string> _published = [];
    private TimeSpan _requestTimeout;
    private IProxyStateLookup? _state;

    public WorkerDestinations(SupervisorOptions options)
    {
        _protocol = options.WorkerProtocol;
        _requestTimeout = options.RequestTimeout;
        _affinity = options.StickySessions
            ? new SessionAffinityConfig
            {
                Enabled = true,
                Policy = SessionAffinityConstants.Policies.HashCookie,
                // When the worker is recycled, the client moves to another one and its cookie is rewritten.
                FailurePolicy = SessionAffinityConstants.FailurePolicies.Redistribute,
                AffinityKeyName = AffinityCookieName,
                Cookie = new SessionAffinityCookieConfig { HttpOnly = true, SameSite = Microsoft.AspNetCore.Http.SameSiteMode.Lax },
            }
            : null;
        Provider = new InMemoryConfigProvider(Routes, [CreateCluster([])]);
    }

    /// <summary>The YARP configuration source these destinations are published to.</summary>
    public InMemoryConfigProvider Provider { get; }

    public bool StickySessions => _affinity is not null;

    /// <summary>Connects to YARP's runtime state, once the proxy exists.</summary>
    public void Attach(IProxyStateLookup state) => _state = state;

    /// <summary>Replaces the destinations with <paramref name="workerKeys"/>; returns YARP's state for each.</summary>
    public IReadOnlyDictionary<string, DestinationState> Publish(IReadOnlyCollection<string> workerKeys)
    {
        _published = workerKeys;
        Provider.Update(Routes, [CreateCluster(workerKeys)]);
        var states = new Dictionary<string, DestinationState>(StringComparer.Ordinal);
        if (_state is not null && _state.TryGetCluster(ClusterId, out var cluster))
        {
            foreach (var key in workerKeys)
            {
                if (cluster.Destinations.TryGetValue(key, out var destination))
                {
                    states[key] = destination;
                }
            }
        }
        return states;
    }

    /// <summary>Sets --request-timeout for requests that start from now on (a reload may change it).</summary>
    public void SetRequestTimeout(TimeSpan requestTimeout)
    {
        if (requestTimeout != _requestTimeout)
        {
            _requestTimeout = requestTimeout;
            Provider.Update(Routes, [CreateCluster(_published)]);
        }
    }

    private ClusterConfig CreateCluster(IReadOnlyCollection<string> workerKeys) => new()
    {
        ClusterId = ClusterId,
        HttpRequest = new ForwarderRequestConfig
        {
            ActivityTimeout = _requestTimeout > TimeSpan.Zero ? _requestTimeout : NoRequestTimeout,
            // Exact: without TLS there is no negotiation, so HTTP/2 must be asked for outright (h2c prior knowledge).
            Version = _protocol == WorkerProtocolVersion.Http2 ? System.Net.HttpVersion.Version20 : System.Net.HttpVersion.Version11,
            VersionPolicy = _protocol == WorkerProtocolVersion.Http2 ? System.Net.Http.HttpVersionPolicy.RequestVersionExact : System.Net.Http.HttpVersionPolicy.RequestVersionOrLower,
        },
        SessionAffinity = _affinity,
        Destinations = workerKeys.ToDictionary(key => key, key => new DestinationConfig { Address = $"http://{key}/" }),
    };
}
