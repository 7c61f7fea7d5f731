using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Supervisor.WorkerHost;

/// <summary>
/// Kestrel's own socket transport for the inherited listening sockets, behind the worker's
/// <see cref="ConnectionGate"/>: accepts wait until the worker is in rotation and end when it drains;
/// with <see cref="FairAccept"/>, each waits its turn while peers hold fewer connections.
/// Registered after the app's services, so Kestrel picks it for these descriptors and its default
/// transport for anything else the app listens on.
/// </summary>
internal sealed class GatedListenerFactory(ConnectionGate gate, FairAccept? fair, IReadOnlyList<PublicListener> inherited, IOptions<SocketTransportOptions> options, ILoggerFactory loggers)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly SocketTransportFactory _sockets = new(options, loggers);

    public bool CanBind(EndPoint endpoint) => InheritedAt(endpoint) is not null;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var inheritedListener = InheritedAt(endpoint)!;
        return new GatedListener(await _sockets.BindAsync(endpoint, cancellationToken), new InheritedListenSocket(inheritedListener.Number), gate, fair, inheritedListener.CleartextHttp2);
    }

    private PublicListener? InheritedAt(EndPoint endpoint) =>
        endpoint is FileHandleEndPoint handle ? inherited.FirstOrDefault(listener => (ulong)listener.Number == handle.FileHandle) : null;

    private sealed class GatedListener(IConnectionListener inner, InheritedListenSocket copy, ConnectionGate gate, FairAccept? fair, bool http2Only) : IConnectionListener
    {
        // Kestrel's stop unbinds, then waits for its accept loop: a worker stopped (SIGTERM) while it still
        // waited to be put in rotation would otherwise wait out its whole shutdown timeout here.
        private readonly CancellationTokenSource _unbound = new();

        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                using var waitUntilUnbound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token);
                if (!await gate.WaitToAcceptAsync(waitUntilUnbound.Token))
                {
                    return null; // Drained before it was ever in rotation: Kestrel ends this accept loop.
                }
            }
            catch (OperationCanceledException) when (_unbound.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            using var acceptUntilDrained = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, gate.Draining, _unbound.Token);
            try
            {
                if (fair is not null)
                {
                    await fair.WaitForTurnAsync(copy.HasWaitingConnection, acceptUntilDrained.Token);
                }
                // The socket is shared: a connection this worker does not accept waits for another's accept.
                if (await inner.AcceptAsync(acceptUntilDrained.Token) is not { } connection)
                {
                    return null;
                }
                gate.Track(connection, http2Only);
                fair?.Count(connection);
                return connection;
            }
            catch (OperationCanceledException) when ((gate.IsDraining || _unbound.IsCancellationRequested) && !cancellationToken.IsCancellationRequested)
            {
                return null;
            }
        }

        // At the host's stop: this worker's copy of the socket closes now, not at its exit (see
        // InheritedListenSocket); the other workers (and the supervisor) keep listening on theirs.
        public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound.Cancel();
            await inner.UnbindAsync(cancellationToken);
            copy.Close();
        }

        public async ValueTask DisposeAsync()
        {
            _unbound.Dispose();
            await inner.DisposeAsync();
            copy.Close();
        }
    }
}
