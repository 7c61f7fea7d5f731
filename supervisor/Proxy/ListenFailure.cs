using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Supervisor.Cli;
using Supervisor.Configuration;

namespace Supervisor.Proxy;

/// <summary>
/// Why a public address cannot be listened on, in one line that names the fix, the same whether a start
/// found it or <c>--check-config</c> did. Exit code 1, not 2: an address held by a process that is still
/// stopping frees itself, so systemd's Restart= should try again.
/// </summary>
internal static class ListenFailure
{
    public static StartupFailureException For(IEnumerable<BindAddress> binds, Exception exception)
    {
        var socketError = Unwrap<AddressInUseException>(exception) is not null
            ? SocketError.AddressAlreadyInUse
            : Unwrap<SocketException>(exception)?.SocketErrorCode;
        var reason = socketError switch
        {
            SocketError.AddressAlreadyInUse => "the address is already in use; stop whatever holds it or choose another --bind",
            SocketError.AccessDenied when binds.OfType<TcpBind>().Any(tcp => tcp.Port is > 0 and < 1024) =>
                "ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port of 1024 or above (behind nginx or a load balancer), or give the service AmbientCapabilities=CAP_NET_BIND_SERVICE",
            SocketError.AddressNotAvailable => "this machine has no such address; bind 0.0.0.0 or one of its own addresses",
            _ => exception.Message.TrimEnd('.'),
        };
        return new StartupFailureException($"cannot listen on {string.Join(", ", binds)}: {reason}", ExitCodes.RuntimeFailure, exception);
    }

    private static T? Unwrap<T>(Exception? exception)
        where T : Exception
    {
        // Kestrel wraps the socket's error in an IOException that repeats the address.
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is T found)
            {
                return found;
            }
        }
        return null;
    }
}
