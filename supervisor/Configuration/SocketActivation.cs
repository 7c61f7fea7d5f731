using System.Globalization;

namespace Supervisor.Configuration;

/// <summary>
/// systemd's socket activation (sd_listen_fds(3)): a <c>.socket</c> unit holds the listening sockets and
/// passes them from file descriptor 3 on, <c>LISTEN_FDS</c> of them, to the process whose pid is
/// <c>LISTEN_PID</c>. While systemd holds them, a restart of the supervisor refuses no connection: they
/// wait in the backlog for the next one. As in Gunicorn, the passed sockets are served instead of
/// <c>--bind</c> (the addresses are the socket unit's to choose).
/// </summary>
internal static class SocketActivation
{
    private const int FirstDescriptor = 3; // SD_LISTEN_FDS_START

    /// <summary>The passed sockets as <c>fd://N</c> addresses; null when none were passed to this process.</summary>
    public static IReadOnlyList<BindAddress>? PassedSockets(IReadOnlyDictionary<string, string> environment, int ownPid)
    {
        if (!environment.TryGetValue("LISTEN_FDS", out var countText)
            || !int.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count <= 0
            || !environment.TryGetValue("LISTEN_PID", out var pidText)
            || !int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid != ownPid)
        {
            return null; // None, or meant for another process (a parent that did not unset them).
        }
        return [.. Enumerable.Range(FirstDescriptor, count).Select(descriptor => new FdBind(descriptor))];
    }
}
