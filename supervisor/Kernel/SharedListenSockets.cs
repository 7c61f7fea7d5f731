using System.Net;
using System.Net.Sockets;
using Supervisor.Configuration;
using Supervisor.Proxy;
using Supervisor.WorkerHost;

namespace Supervisor.Kernel;

/// <summary>
/// --balancer kernel and handoff: the public listening sockets, bound by the supervisor before any worker
/// exists (so a taken port leaves nothing behind, as in proxy mode). In kernel mode they are left open
/// across exec, so that every worker inherits them under the same descriptors and accepts on them; the
/// kernel gives each connection to whichever worker accepts first. In handoff mode no worker inherits
/// them: the supervisor accepts and hands each connection over (<see cref="ConnectionDealer"/>). The
/// supervisor keeps them open for its whole life: connections wait in the backlog while none accepts.
/// </summary>
internal sealed class SharedListenSockets : IDisposable
{
    private readonly List<(Socket Socket, PublicListener Listener, string Address)> _sockets;
    private bool _disposed;

    private SharedListenSockets(List<(Socket, PublicListener, string)> sockets) => _sockets = sockets;

    /// <summary>What each worker is told it serves: the descriptors it inherited, or the numbers handed connections carry.</summary>
    public IReadOnlyList<PublicListener> Listeners => [.. _sockets.Select(socket => socket.Listener)];

    /// <summary>Each listening socket with the listener it is.</summary>
    public IEnumerable<(Socket Socket, PublicListener Listener)> Sockets => _sockets.Select(socket => (socket.Socket, socket.Listener));

    /// <summary>Where the sockets listen, as Gunicorn's "Listening at" names them.</summary>
    public IReadOnlyList<string> Addresses => [.. _sockets.Select(socket => socket.Address)];

    /// <summary>Binds every address; a failure names the address and its fix, and leaves nothing bound.</summary>
    /// <param name="inherited">Kernel mode: every worker inherits the sockets. Otherwise (handoff) they stay the supervisor's alone.</param>
    /// <param name="https">--certfile: the workers serve TLS on every socket, as the front would.</param>
    public static SharedListenSockets Bind(IReadOnlyList<BindAddress> binds, int backlog, bool inherited, bool https)
    {
        var sockets = new List<(Socket, PublicListener, string)>();
        try
        {
            foreach (var bind in binds)
            {
                try
                {
                    foreach (var socket in Open(bind, backlog))
                    {
                        var descriptor = (int)socket.Handle;
                        if (inherited)
                        {
                            Native.Libc.SetCloseOnExec(descriptor, false);
                        }
                        sockets.Add((socket, new PublicListener(inherited ? descriptor : sockets.Count, bind.CleartextHttp2), Describe(bind, socket, https)));
                    }
                }
                catch (SocketException exception)
                {
                    throw ListenFailure.For([bind], exception);
                }
            }
            return new SharedListenSockets(sockets);
        }
        catch
        {
            foreach (var (socket, _, _) in sockets)
            {
                socket.Dispose();
            }
            throw;
        }
    }

    /// <summary>
    /// Closes this process's descriptors. After a binary upgrade another supervisor serves the same
    /// sockets: .NET ends an accept still pending at close with shutdown(), which would stop the socket
    /// for every process, unless the descriptor is inheritable; so each is made so first, and closed plainly.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (var (socket, _, _) in _sockets)
        {
            Native.Libc.SetCloseOnExec((int)socket.Handle, false);
            socket.Dispose();
        }
    }

    private static IEnumerable<Socket> Open(BindAddress bind, int backlog)
    {
        switch (bind)
        {
            case TcpBind { Host: "localhost" } tcp:
                // Both loopbacks, as Kestrel's ListenLocalhost: the IPv6 one only where the machine has it.
                yield return Listen(new IPEndPoint(IPAddress.Loopback, tcp.Port), backlog);
                if (Socket.OSSupportsIPv6 && TryListen(new IPEndPoint(IPAddress.IPv6Loopback, tcp.Port), backlog) is { } ipv6)
                {
                    yield return ipv6;
                }
                break;
            case TcpBind tcp:
                yield return Listen(new IPEndPoint(IPAddress.Parse(tcp.Host), tcp.Port), backlog);
                break;
            case UnixBind unix:
                FrontDoor.RemoveStaleUnixSocket(unix.Path);
                var descriptor = UnixListenSockets.Bind(unix.Path, backlog);
                yield return new Socket(new SafeSocketHandle(descriptor, ownsHandle: true));
                break;
            case FdBind fd:
                yield return new Socket(new SafeSocketHandle(fd.Descriptor, ownsHandle: true));
                break;
        }
    }

    private static Socket Listen(IPEndPoint endpoint, int backlog)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true; // [::] takes IPv4 clients too, as Kestrel's does.
            }
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(endpoint);
            socket.Listen(backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Socket? TryListen(IPEndPoint endpoint, int backlog)
    {
        try
        {
            return Listen(endpoint, backlog);
        }
        catch (SocketException exception) when (exception.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported)
        {
            return null;
        }
    }

    private static string Describe(BindAddress bind, Socket socket, bool https) => socket.LocalEndPoint switch
    {
        IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"{Scheme(https)}://[{ip.Address}]:{ip.Port}",
        IPEndPoint ip => $"{Scheme(https)}://{ip.Address}:{ip.Port}",
        UnixDomainSocketEndPoint unix => $"{Scheme(https)}://unix:{unix}",
        _ => bind.ToString(),
    } + (bind is FdBind fd ? $" (fd {fd.Descriptor})" : "") + (bind.CleartextHttp2 && !https ? " (h2c)" : "");

    private static string Scheme(bool https) => https ? "https" : "http";
}
