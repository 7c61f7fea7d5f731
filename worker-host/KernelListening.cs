using System.Globalization;

namespace Supervisor.WorkerHost;

/// <summary>
/// A public address the worker serves clients on: in kernel mode <paramref name="Number"/> is the
/// listening socket's descriptor, inherited from the supervisor; in handoff mode it is the listener's
/// number, which each connection the supervisor hands over carries.
/// </summary>
public sealed record PublicListener(int Number, bool CleartextHttp2)
{
    public override string ToString() => Number.ToString(CultureInfo.InvariantCulture) + (CleartextHttp2 ? ":h2c" : "");
}

/// <summary>
/// --balancer kernel or handoff: the worker serves the clients itself, instead of serving the supervisor
/// on a private socket. With <paramref name="HandoffSocket"/> (handoff) the supervisor accepts each
/// connection and hands it over that socket; without it (kernel) the worker accepts on the listening
/// sockets it shares with the other workers.
/// </summary>
public sealed record KernelListening(IReadOnlyList<PublicListener> Listeners, string? HandoffSocket, long RequestLimit, TimeSpan KeepAlive)
{
    /// <summary>Reads <c>3,4:h2c</c>; null when absent (proxy mode) or unreadable.</summary>
    public static IReadOnlyList<PublicListener>? ParseListeners(string? text, int lowest)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        var listeners = new List<PublicListener>();
        foreach (var part in text.Split(','))
        {
            var (number, h2c) = part.EndsWith(":h2c", StringComparison.Ordinal) ? (part[..^4], true) : (part, false);
            if (!int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < lowest)
            {
                return null;
            }
            listeners.Add(new PublicListener(value, h2c));
        }
        return listeners;
    }

    public static string Format(IEnumerable<PublicListener> listeners) => string.Join(',', listeners);

    internal static KernelListening? FromEnvironment()
    {
        const int LowestInheritedDescriptor = 3; // After standard input, output and error.
        var handoffSocket = Environment.GetEnvironmentVariable(WorkerProtocol.HandoffSocketVariable);
        var listeners = string.IsNullOrEmpty(handoffSocket)
            ? ParseListeners(Environment.GetEnvironmentVariable(WorkerProtocol.ListenHandlesVariable), LowestInheritedDescriptor)
            : ParseListeners(Environment.GetEnvironmentVariable(WorkerProtocol.HandoffListenersVariable), 0);
        if (listeners is null)
        {
            return null;
        }
        _ = long.TryParse(Environment.GetEnvironmentVariable(WorkerProtocol.RequestLimitVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var limit);
        var keepAlive = int.TryParse(Environment.GetEnvironmentVariable(WorkerProtocol.KeepAliveVariable), NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            ? TimeSpan.FromMilliseconds(ms)
            : TimeSpan.FromSeconds(2);
        return new KernelListening(listeners, string.IsNullOrEmpty(handoffSocket) ? null : handoffSocket, limit, keepAlive);
    }
}
