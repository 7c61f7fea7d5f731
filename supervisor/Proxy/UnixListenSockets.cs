using System.Net.Sockets;

namespace Supervisor.Proxy;

/// <summary>
/// The <c>unix:</c> addresses the supervisor listens on, bound here rather than by Kestrel. A socket
/// .NET binds to a path deletes that path when it is disposed, so Kestrel's own would remove the file at
/// every stop: also at the end of a binary upgrade, when the new supervisor serves the same socket and
/// new clients would find no file to connect to. Kestrel gets a duplicate of the descriptor; the socket
/// that owns the path lives as long as the process, and the file is removed by <see cref="RemoveFiles"/>
/// at a stop that hands nothing over.
/// </summary>
internal static class UnixListenSockets
{
    private static readonly List<Socket> Bound = [];
    private static readonly List<string> Paths = [];
    private static readonly Lock BoundLock = new();

    /// <summary>Binds and listens on <paramref name="path"/>; returns a close-on-exec duplicate of the descriptor for Kestrel.</summary>
    public static int Bind(string path, int backlog)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(backlog);
            var duplicate = Native.Libc.DuplicateCloseOnExec((int)socket.Handle);
            lock (BoundLock)
            {
                Bound.Add(socket);
                Paths.Add(path);
            }
            return duplicate;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>A socket a binary upgrade handed over: if it is a <c>unix:</c> one, its file is now this supervisor's to remove.</summary>
    public static void Adopt(int descriptor)
    {
        if (Native.ListeningSockets.AddressOf(descriptor) is { } address && address.StartsWith("unix:", StringComparison.Ordinal))
        {
            lock (BoundLock)
            {
                Paths.Add(address["unix:".Length..]);
            }
        }
    }

    /// <summary>Removes the socket files: at a stop that does not hand the sockets to another supervisor.</summary>
    public static void RemoveFiles()
    {
        lock (BoundLock)
        {
            foreach (var path in Paths)
            {
                try
                {
                    File.Delete(path);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                }
            }
        }
    }
}
