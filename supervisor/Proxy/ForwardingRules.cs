using System.Collections.Frozen;
using Microsoft.Extensions.Primitives;
using Supervisor.Configuration;
using Supervisor.WorkerHost;

namespace Supervisor.Proxy;

/// <summary>
/// Which header fields a request or response keeps on its way through the front: one rule for both
/// paths to the workers (the front's own HTTP/2 client and YARP), so that an app sees the same request
/// whichever path carried it.
/// </summary>
internal static class ForwardingRules
{
    // YARP's list (RequestUtilities): the hop-by-hop fields of RFC 9110 7.6.1, the proxy's own
    // authentication fields, and fields that only make sense on the client's connection. TE is handled
    // apart: "te: trailers" is kept for an HTTP/2 client, as YARP does, and gRPC needs.
    private static readonly FrozenSet<string> NotForwarded = new[]
    {
        "Connection", "Transfer-Encoding", "Keep-Alive", "Upgrade", "Proxy-Connection", "Proxy-Authenticate",
        "Proxy-Authentication-Info", "Proxy-Authorization", "Proxy-Features", "Proxy-Instruction", "Security-Scheme",
        "ALPN", "Close", "HTTP2-Settings", "Upgrade-Insecure-Requests", "TE", "Alt-Svc",
    }.ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>True for a request field never passed to a worker.</summary>
    public static bool IsNotForwarded(string name) => NotForwarded.Contains(name);

    /// <summary>True for a worker's response field never passed to the client.</summary>
    public static bool IsResponseFieldNotForwarded(string name) => NotForwarded.Contains(name);

    /// <summary>
    /// The fields a request's Connection header names: hop-by-hop by the client's own word, so a proxy
    /// removes them (RFC 9110 7.6.1). Empty for almost every request.
    /// </summary>
    public static IReadOnlyCollection<string> NamedInConnection(IHeaderDictionary headers)
    {
        var connection = headers.Connection;
        if (StringValues.IsNullOrEmpty(connection))
        {
            return [];
        }
        HashSet<string>? named = null;
        foreach (var value in connection)
        {
            foreach (var token in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!token.Equals("close", StringComparison.OrdinalIgnoreCase) && !token.Equals("keep-alive", StringComparison.OrdinalIgnoreCase))
                {
                    (named ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase)).Add(token);
                }
            }
        }
        return (IReadOnlyCollection<string>?)named ?? [];
    }

    /// <summary>True when an HTTP/2 client's TE asks for trailers: the one TE an HTTP/2 request may carry (RFC 9113 8.2.2).</summary>
    public static bool KeepsTrailersTe(HttpRequest request) =>
        HttpProtocol.IsHttp2(request.Protocol) || HttpProtocol.IsHttp3(request.Protocol)
            ? request.Headers.TE.Any(value => (value ?? "").Split(',', StringSplitOptions.TrimEntries).Any(token => token.Equals("trailers", StringComparison.OrdinalIgnoreCase)))
            : false;

    /// <summary>
    /// What forwarding adds to a request, for the worker-host to make room for in the app's limits: the
    /// fields (HTTP/2's four pseudo-headers instead of Host, and X-Forwarded-For, -Proto and -Host), and
    /// the octets they may take — the request target, now a field, and a host as long as a field may be.
    /// </summary>
    public static HeaderAllowance Allowance(SupervisorOptions options)
    {
        var longestTarget = options.LimitRequestLine > 0 ? options.LimitRequestLine : EdgeLimits.MaxRequestLineBytes;
        var longestField = options.LimitRequestFieldSize > 0 ? options.LimitRequestFieldSize : EdgeLimits.MaxHeaderBytes;
        const int addedFields = 6;
        const int namesAndAddresses = 256; // The fields' names, a method, a scheme, an IPv6 address.
        return new HeaderAllowance(addedFields, longestTarget + longestField + namesAndAddresses, Math.Max(longestTarget, longestField), options.LimitRequestFields);
    }
}
