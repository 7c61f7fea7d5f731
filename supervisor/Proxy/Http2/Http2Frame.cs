using System.Buffers.Binary;

namespace Supervisor.Proxy.Http2;

/// <summary>HTTP/2 frame types, flags, settings and error codes (RFC 9113), and the 9-byte frame header.</summary>
internal static class Http2Frame
{
    public const int HeaderLength = 9;

    /// <summary>The largest frame payload a peer must accept, and the largest this client accepts.</summary>
    public const int DefaultMaxPayload = 16_384;

    public static ReadOnlySpan<byte> ClientPreface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    public static void WriteHeader(Span<byte> destination, int payloadLength, byte type, byte flags, int streamId)
    {
        destination[0] = (byte)(payloadLength >> 16);
        destination[1] = (byte)(payloadLength >> 8);
        destination[2] = (byte)payloadLength;
        destination[3] = type;
        destination[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(destination[5..], streamId);
    }

    public static class Type
    {
        public const byte Data = 0x0;
        public const byte Headers = 0x1;
        public const byte RstStream = 0x3;
        public const byte Settings = 0x4;
        public const byte PushPromise = 0x5;
        public const byte Ping = 0x6;
        public const byte GoAway = 0x7;
        public const byte WindowUpdate = 0x8;
        public const byte Continuation = 0x9;
    }

    public static class Flags
    {
        public const byte EndStream = 0x1;
        public const byte Ack = 0x1;
        public const byte EndHeaders = 0x4;
        public const byte Padded = 0x8;
        public const byte Priority = 0x20;
    }

    public static class Setting
    {
        public const ushort EnablePush = 0x2;
        public const ushort MaxConcurrentStreams = 0x3;
        public const ushort InitialWindowSize = 0x4;
        public const ushort MaxFrameSize = 0x5;
    }

    public static class ErrorCode
    {
        public const int ProtocolError = 0x1;
        public const int RefusedStream = 0x7;
        public const int Cancel = 0x8;
    }
}
