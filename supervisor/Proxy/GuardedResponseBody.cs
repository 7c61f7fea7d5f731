namespace Supervisor.Proxy;

/// <summary>
/// The client's response body as YARP's path writes it, with the <see cref="SlowClientGuard"/>'s bounds:
/// the same rule for a stalled client whichever path carries its response.
/// </summary>
internal sealed class GuardedResponseBody(Stream inner, SlowClientGuard guard) : Stream
{
    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var write = inner.WriteAsync(buffer, cancellationToken);
        return write.IsCompletedSuccessfully ? default : guard.WaitAsync(write.AsTask());
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        var flush = inner.FlushAsync(cancellationToken);
        return flush.IsCompletedSuccessfully ? flush : guard.WaitAsync(flush).AsTask();
    }

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
