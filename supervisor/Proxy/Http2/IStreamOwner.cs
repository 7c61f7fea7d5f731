namespace Supervisor.Proxy.Http2;

/// <summary>What a <see cref="WorkerStream"/> asks of the connection that carries it.</summary>
internal interface IStreamOwner
{
    /// <summary>Ends the stream from this side with RST_STREAM <paramref name="errorCode"/>, unless it has already ended.</summary>
    void Reset(WorkerStream stream, int errorCode, Exception failure);

    /// <summary>Gives back window for octets the forwarder has read from the stream.</summary>
    void GrantStreamWindow(WorkerStream stream, int increment);
}
