using System.Runtime.InteropServices;

namespace Supervisor.WorkerHost;

/// <summary>
/// Passes an open socket from one process to another over a Unix socket (SCM_RIGHTS), which .NET has no
/// API for: the supervisor accepts a client's connection and hands it to a worker (--balancer handoff).
/// Each message is one byte, the listener's number, carrying one descriptor; on a SOCK_SEQPACKET socket
/// messages keep their boundaries, so a descriptor is never split from its byte or merged with another's.
/// Linux on 64-bit only, as the supervisor: the structures below are laid out for LP64.
/// </summary>
public static unsafe partial class DescriptorPassing
{
    private const int SocketLevel = 1; // SOL_SOCKET
    private const int Rights = 1; // SCM_RIGHTS
    private const int DontWait = 0x40; // MSG_DONTWAIT
    private const int NoSignal = 0x4000; // MSG_NOSIGNAL
    private const int ControlTruncated = 0x8; // MSG_CTRUNC
    private const int CloseOnExecOnReceipt = 0x40000000; // MSG_CMSG_CLOEXEC
    private const int Interrupted = 4; // EINTR

    /// <summary>The send would block: the receiver's queue is full (it is not reading).</summary>
    public const int WouldBlock = 11; // EAGAIN

    // CMSG_SPACE(sizeof(int)): a cmsghdr (16 bytes on LP64) and one descriptor, aligned to 8.
    private const int ControlSpace = 24;

    /// <summary>
    /// Sends <paramref name="descriptor"/> with its listener's number, without blocking. Returns 0, or the
    /// errno: <see cref="WouldBlock"/> when the receiver's queue is full, EPIPE or ECONNRESET when it has
    /// gone. The sender keeps its own copy of the descriptor, to close.
    /// </summary>
    public static int Send(SafeHandle channel, byte listener, int descriptor)
    {
        var control = stackalloc byte[ControlSpace];
        new Span<byte>(control, ControlSpace).Clear();
        var header = (ControlHeader*)control;
        header->Length = (nuint)(sizeof(ControlHeader) + sizeof(int));
        header->Level = SocketLevel;
        header->Type = Rights;
        *(int*)(control + sizeof(ControlHeader)) = descriptor;
        var vector = new IoVector { Base = &listener, Length = 1 };
        var message = new MessageHeader { Vectors = &vector, VectorCount = 1, Control = control, ControlLength = ControlSpace };
        var added = false;
        try
        {
            channel.DangerousAddRef(ref added);
            while (true)
            {
                if (sendmsg((int)channel.DangerousGetHandle(), &message, DontWait | NoSignal) >= 0)
                {
                    return 0;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Interrupted)
                {
                    return errno;
                }
            }
        }
        finally
        {
            if (added)
            {
                channel.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Waits for the next descriptor. Returns true with it (close-on-exec, so the app's child processes
    /// do not inherit client connections); false at the end of the stream. A message that came without a
    /// descriptor gives -1. Throws <see cref="IOException"/> on an error.
    /// </summary>
    public static bool Receive(SafeHandle channel, out byte listener, out int descriptor)
    {
        var control = stackalloc byte[ControlSpace];
        byte received = 0;
        var vector = new IoVector { Base = &received, Length = 1 };
        var message = new MessageHeader { Vectors = &vector, VectorCount = 1, Control = control, ControlLength = ControlSpace };
        var added = false;
        try
        {
            channel.DangerousAddRef(ref added);
            nint length;
            while ((length = recvmsg((int)channel.DangerousGetHandle(), &message, CloseOnExecOnReceipt)) < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Interrupted)
                {
                    throw new IOException($"receiving a connection failed (errno {errno})");
                }
                message.ControlLength = ControlSpace;
            }
            listener = received;
            descriptor = -1;
            if (length == 0)
            {
                return false;
            }
            var header = (ControlHeader*)control;
            if (message.ControlLength >= (nuint)(sizeof(ControlHeader) + sizeof(int)) && header->Level == SocketLevel && header->Type == Rights
                && (message.Flags & ControlTruncated) == 0)
            {
                descriptor = *(int*)(control + sizeof(ControlHeader));
            }
            return true;
        }
        finally
        {
            if (added)
            {
                channel.DangerousRelease();
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVector
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVector* Vectors;
        public nuint VectorCount;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ControlHeader
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(int socket, MessageHeader* message, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvmsg(int socket, MessageHeader* message, int flags);
}
