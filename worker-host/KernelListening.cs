using System.Globalization;

namespace Supervisor.WorkerHost;

/// <summary>A public listening socket the worker inherited from the supervisor (--balancer kernel).</summary>
public sealed record InheritedListener(int Descriptor, bool CleartextHttp2)
{
    public override string ToString() => Descriptor.ToString(CultureInfo.InvariantCulture) + (CleartextHttp2 ? ":h2c" : "");
}

/// <summary>
/// --balancer kernel: the worker serves the clients itself, on listening sockets it shares with the
/// other workers, instead of serving the supervisor on a private socket.
/// </summary>
public sealed record KernelListening(IReadOnlyList<InheritedListener> Listeners, long RequestLimit, TimeSpan KeepAlive)
{
    /// <summary>Reads <c>3,4:h2c</c>; null when absent (proxy mode) or unreadable.</summary>
    public static IReadOnlyList<InheritedListener>? ParseListeners(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        var listeners = new List<InheritedListener>();
        foreach (var part in text.Split(','))
        {
            var (number, h2c) = part.EndsWith(":h2c", StringComparison.Ordinal) ? (part[..^4], true) : (part, false);
            if (!int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var descriptor) || descriptor < 3)
            {
                return null;
            }
            listeners.Add(new InheritedListener(descriptor, h2c));
        }
        return listeners;
    }

    public static string Format(IEnumerable<InheritedListener> listeners) => string.Join(',', listeners);

    internal static KernelListening? FromEnvironment()
    {
        if (ParseListeners(Environment.GetEnvironmentVariable(WorkerProtocol.ListenHandlesVariable)) is not { } listeners)
        {
            return null;
        }
        _ = long.TryParse(Environment.GetEnvironmentVariable(WorkerProtocol.RequestLimitVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var limit);
        var keepAlive = int.TryParse(Environment.GetEnvironmentVariable(WorkerProtocol.KeepAliveVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            ? TimeSpan.FromMilliseconds(ms)
            : TimeSpan.FromSeconds(2);
        return new KernelListening(listeners, limit, keepAlive);
    }
}
