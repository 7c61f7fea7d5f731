using System.Net.Sockets;

namespace Supervisor.Control;

/// <summary>The supervisor's own Unix sockets (the workers' control socket, the command socket): owner-only, and an accept loop that ends when stopped.</summary>
internal static class PrivateUnixListener
{
    /// <summary>Binds and listens on <paramref name="socketPath"/>, mode 0600: the run directory's 0700 is the first fence, this the second.</summary>
    public static Socket Bind(string socketPath, int backlog, SocketType type = SocketType.Stream)
    {
        var listener = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(backlog);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Hands each accepted connection to <paramref name="onAccepted"/> until <paramref name="stopping"/> or the listener is closed.</summary>
    public static async Task AcceptUntilStoppedAsync(Socket listener, Action<Socket> onAccepted, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stopping);
            }
            catch (Exception exception) when (exception is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }
            onAccepted(connection);
        }
    }
}
