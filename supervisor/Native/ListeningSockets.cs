using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Supervisor.Native;

/// <summary>
/// The listening sockets this process holds, found by the address each listens on: Kestrel keeps its
/// sockets to itself, and a binary upgrade must hand them, by descriptor, to the supervisor it starts.
/// </summary>
internal static class ListeningSockets
{
    /// <summary>
    /// The descriptor of each listening socket whose address is one of <paramref name="addresses"/>
    /// (as <see cref="AddressOf"/> spells them), lowest first; an address with no socket is absent.
    /// </summary>
    public static Dictionary<string, int> Find(IReadOnlyCollection<string> addresses)
    {
        var found = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var descriptor in OpenDescriptors())
        {
            if (IsListeningSocket(descriptor) && AddressOf(descriptor) is { } address && addresses.Contains(address))
            {
                found.TryAdd(address, descriptor);
            }
        }
        return found;
    }

    /// <summary>Where the socket listens, as getsockname tells it: <c>127.0.0.1:8000</c>, <c>[::1]:8000</c>, <c>unix:/path</c>.</summary>
    public static string? AddressOf(int descriptor)
    {
        try
        {
            // Not owned: the socket stays its listener's, open and unchanged.
            using var socket = new Socket(new SafeSocketHandle(descriptor, ownsHandle: false));
            return socket.LocalEndPoint switch
            {
                IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"[{ip.Address}]:{ip.Port}",
                UnixDomainSocketEndPoint unix => $"unix:{unix}",
                null => null,
                var other => other.ToString(),
            };
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private static bool IsListeningSocket(int descriptor)
    {
        try
        {
            using var socket = new Socket(new SafeSocketHandle(descriptor, ownsHandle: false));
            return socket.SocketType == SocketType.Stream
                && socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection) is int listening && listening != 0;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    // /proc/self/fd lists every open descriptor; those that are sockets link to "socket:[inode]".
    private static List<int> OpenDescriptors() =>
        Directory.EnumerateFileSystemEntries("/proc/self/fd")
            .Select(path => (Path: path, Number: int.TryParse(Path.GetFileName(path), NumberStyles.None, CultureInfo.InvariantCulture, out var number) ? number : -1))
            .Where(entry => entry.Number > 2 && IsSocketLink(entry.Path))
            .Select(entry => entry.Number)
            .Order()
            .ToList();

    private static bool IsSocketLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true;
        }
        catch (IOException)
        {
            return false; // Closed since the listing.
        }
    }
}
