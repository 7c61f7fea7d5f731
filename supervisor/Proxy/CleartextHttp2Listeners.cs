using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Supervisor.Proxy;

/// <summary>
/// The listeners of h2c: addresses, to tell them apart among the addresses Kestrel reports, which carry
/// no protocol. Kestrel writes the port it chose for :0 back into the listener's endpoint when it binds.
/// </summary>
internal sealed class CleartextHttp2Listeners
{
    private readonly List<ListenOptions> _listeners = [];

    public void Add(ListenOptions listener) => _listeners.Add(listener);

    /// <summary>Whether a reported address (http://127.0.0.1:8001, http://unix:/path) is one of them.</summary>
    public bool Serves(string address)
    {
        var reported = address[(address.IndexOf("://", StringComparison.Ordinal) + 3)..].TrimEnd('/');
        return _listeners.Any(listener => listener switch
        {
            // A socket given by descriptor (unix: binds, fd://, a binary upgrade's): where it listens.
            { FileHandle: > 0 } => Native.ListeningSockets.AddressOf((int)listener.FileHandle) == reported,
            { SocketPath: { } path } => reported == $"unix:{path}",
            _ => Uri.TryCreate(address, UriKind.Absolute, out var uri) && listener.IPEndPoint?.Port == uri.Port,
        });
    }
}
