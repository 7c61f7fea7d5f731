using Supervisor.Configuration;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.LoadBalancing;
using Yarp.ReverseProxy.SessionAffinity;

namespace Supervisor.Proxy;

/// <summary>
/// The set of workers YARP may send requests to. The arbiter publishes the whole set of ready workers
/// as one snapshot per change; YARP applies it before <see cref="Publish"/> returns.
/// </summary>
internal sealed class WorkerDestinations
{
    public const string ClusterId = "workers";

    /// <summary>The cookie that carries a client's worker under --sticky-sessions.</summary>
    public const string AffinityCookieName = ".Supervisor.Worker";
    private const string RouteId = "all";

    private static readonly IReadOnlyList<RouteConfig> Routes =
    [
        new RouteConfig { RouteId = RouteId, ClusterId = ClusterId, Match = new RouteMatch { Path = "{**catch-all}" } },
    ];

    private readonly Lock _lock = new();
    private readonly ForwarderRequestConfig _requestConfig;
    private readonly SessionAffinityConfig? _affinity;
    private TaskCompletionSource _anyReady = NewSignal();
    private IProxyStateLookup? _state;
    private int _count;

    /// <param name="requestTimeout">The --request-timeout: no response activity for this long gives 504.</param>
    /// <param name="stickySessions">The --sticky-sessions: a cookie keeps a client on its worker while it lives.</param>
    /// <param name="protocol">The --worker-protocol.</param>
    public WorkerDestinations(TimeSpan requestTimeout, bool stickySessions, WorkerProtocolVersion protocol)
    {
        _requestConfig = new ForwarderRequestConfig
        {
            ActivityTimeout = requestTimeout,
            // Exact: without TLS there is no negotiation, so HTTP/2 must be asked for outright (h2c prior knowledge).
            Version = protocol == WorkerProtocolVersion.Http2 ? System.Net.HttpVersion.Version20 : System.Net.HttpVersion.Version11,
            VersionPolicy = protocol == WorkerProtocolVersion.Http2 ? System.Net.Http.HttpVersionPolicy.RequestVersionExact : System.Net.Http.HttpVersionPolicy.RequestVersionOrLower,
        };
        _affinity = stickySessions
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

    public int Count => Volatile.Read(ref _count);

    /// <summary>Connects to YARP's runtime state, once the proxy exists.</summary>
    public void Attach(IProxyStateLookup state) => _state = state;

    /// <summary>
    /// Reads a worker's in-flight request count. Call it before the update that removes the worker:
    /// the captured state keeps counting down afterwards but can no longer be looked up.
    /// </summary>
    public Func<int> InFlightCounter(string workerKey) =>
        _state is not null && _state.TryGetCluster(ClusterId, out var cluster) && cluster.Destinations.TryGetValue(workerKey, out var destination)
            ? () => destination.ConcurrentRequestCount
            : () => 0;

    /// <summary>Replaces the destinations with <paramref name="workerKeys"/>, each reached at <c>http://KEY/</c>.</summary>
    public void Publish(IReadOnlyCollection<string> workerKeys)
    {
        Provider.Update(Routes, [CreateCluster(workerKeys)]);
        lock (_lock)
        {
            _count = workerKeys.Count;
            if (_count > 0)
            {
                _anyReady.TrySetResult();
            }
            else if (_anyReady.Task.IsCompleted)
            {
                _anyReady = NewSignal();
            }
        }
    }

    /// <summary>Completes when at least one worker is ready (at once if one is), or when the wait is over.</summary>
    public async Task<bool> WaitForAnyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Task ready;
        lock (_lock)
        {
            ready = _anyReady.Task;
        }
        if (ready.IsCompleted)
        {
            return true;
        }
        try
        {
            await ready.WaitAsync(timeout, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private ClusterConfig CreateCluster(IReadOnlyCollection<string> workerKeys) => new()
    {
        ClusterId = ClusterId,
        HttpRequest = _requestConfig,
        SessionAffinity = _affinity,
        // Least busy of two random picks: spreads idle load evenly and steers around a busy worker.
        LoadBalancingPolicy = LoadBalancingPolicies.PowerOfTwoChoices,
        Destinations = workerKeys.ToDictionary(key => key, key => new DestinationConfig { Address = $"http://{key}/" }),
    };

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
