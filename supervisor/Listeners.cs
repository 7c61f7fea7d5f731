using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Supervisor.Configuration;
using Supervisor.Control;
using Supervisor.Native;
using Supervisor.Proxy;

namespace Supervisor;

/// <summary>
/// The supervisor's listening sockets: the public front and the health endpoints. Started once (at
/// start, or when a binary upgrade's new supervisor takes over), announced in Gunicorn's words, and
/// handed over, by descriptor, to the supervisor a binary upgrade starts.
/// </summary>
/// <remarks>
/// With --balancer kernel and handoff the public sockets are <paramref name="shared"/>, bound already (or
/// handed over by the old supervisor), and served by the workers: the front is not started.
/// </remarks>
internal sealed class Listeners(WebApplication front, Kernel.SharedListenSockets? shared, AdminEndpoints? admin, IReadOnlyList<BindAddress> binds, bool https, Serilog.ILogger log)
{
    public async Task StartAsync()
    {
        IEnumerable<string> addresses;
        if (shared is not null)
        {
            addresses = shared.Addresses;
        }
        else
        {
            await ListenAsync(() => front.StartAsync(), binds);
            addresses = FrontDoor.ListeningAddresses(front, binds, https);
        }
        foreach (var address in addresses)
        {
            log.Information("Listening at: {Address} ({Pid})", address, Environment.ProcessId);
        }
        if (admin is null)
        {
            return;
        }
        await ListenAsync(admin.StartAsync, [admin.Bind]);
        foreach (var address in admin.Addresses)
        {
            log.Information("Health endpoints at: {Address} (GET /livez, /readyz, /metrics)", FrontDoor.Shown(address));
        }
    }

    /// <summary>What a new supervisor needs to serve in this one's place: each listening socket by descriptor, and where to say it serves.</summary>
    public UpgradeHandover Handover(string commandSocket)
    {
        // --balancer kernel and handoff: the sockets the workers are served from. This supervisor's workers
        // (kernel) or dealer (handoff) accept on them beside the new supervisor's until it takes over.
        List<FdBind> frontBinds = shared is not null
            ? [.. shared.Sockets.Select(socket => new FdBind((int)socket.Socket.Handle) { CleartextHttp2 = socket.Listener.CleartextHttp2 })]
            : FrontSockets();
        var adminBind = admin is null ? null : SocketsOf(admin.Addresses.ToList()) switch
        {
            [var only] => only.Bind,
            var several => throw new IOException($"--admin-bind {admin.Bind} listens on {several.Count} sockets, and an upgrade hands over one; give it one address (127.0.0.1:PORT)"),
        };
        return new UpgradeHandover(Environment.ProcessId, commandSocket, frontBinds, adminBind);
    }

    private List<FdBind> FrontSockets()
    {
        var cleartextHttp2 = front.Services.GetRequiredService<CleartextHttp2Listeners>();
        return [.. SocketsOf(AddressesOf(front.Services)).Select(socket => socket.Bind with { CleartextHttp2 = cleartextHttp2.Serves(socket.Address) })];
    }

    // A listener that cannot bind is told in the start's own words (in use, privileged port, foreign address).
    private static async Task ListenAsync(Func<Task> start, IReadOnlyList<BindAddress> binds)
    {
        try
        {
            await start();
        }
        catch (Exception exception) when (exception is AddressInUseException or IOException or System.Net.Sockets.SocketException)
        {
            throw ListenFailure.For(binds, exception);
        }
    }

    private static List<string> AddressesOf(IServiceProvider services) =>
        [.. services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? []];

    // Kestrel's addresses (http://127.0.0.1:8000, http://unix:/path, http://localhost:8000 for both
    // loopbacks) matched with the descriptors of the sockets that listen there.
    private static List<(string Address, FdBind Bind)> SocketsOf(IReadOnlyList<string> addresses)
    {
        var wanted = addresses.ToDictionary(address => address, SocketAddresses);
        var found = ListeningSockets.Find([.. wanted.Values.SelectMany(socketAddresses => socketAddresses)]);
        var sockets = new List<(string, FdBind)>();
        foreach (var (address, socketAddresses) in wanted)
        {
            var descriptors = socketAddresses.Where(found.ContainsKey).Select(socketAddress => found[socketAddress]).ToList();
            if (descriptors.Count == 0)
            {
                throw new IOException($"no listening socket of this process is at {address}");
            }
            sockets.AddRange(descriptors.Select(descriptor => (address, new FdBind(descriptor))));
        }
        return sockets;
    }

    private static string[] SocketAddresses(string address)
    {
        var withoutScheme = address[(address.IndexOf("://", StringComparison.Ordinal) + 3)..].TrimEnd('/');
        return withoutScheme.StartsWith("localhost:", StringComparison.Ordinal)
            ? [$"127.0.0.1:{withoutScheme["localhost:".Length..]}", $"[::1]:{withoutScheme["localhost:".Length..]}"]
            : [withoutScheme];
    }
}
