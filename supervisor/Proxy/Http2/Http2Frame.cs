using System.Buffers.Binary;

namespace Supervisor.Proxy.Http2;

/// <summary>HTTP/2 frame types, flags, settings and error codes (RFC 9113), and the 9-octet frame header.</summary>
internal static class Http2Frame
{
    public const int HeaderLength = 9;

    /// <summary>The largest frame payload a peer must accept, and the largest this client accepts (SETTINGS_MAX_FRAME_SIZE unchanged).</summary>
    public const int DefaultMaxPayload = 16_384;

    /// <summary>The largest SETTINGS_MAX_FRAME_SIZE a peer may announce (2^24 - 1).</summary>
    public const int MaxAllowedPayload = 16_777_215;

    /// <summary>The largest flow-control window (2^31 - 1).</summary>
    public const int MaxWindow = int.MaxValue;

    /// <summary>Every stream's and the connection's window before SETTINGS or WINDOW_UPDATE change it.</summary>
    public const int DefaultWindow = 65_535;

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

    /// <summary>Reads a frame header; the reserved bit of the stream id is ignored, as RFC 9113 4.1 says.</summary>
    public static (int Length, byte Type, byte Flags, int StreamId) ReadHeader(ReadOnlySpan<byte> source) =>
        ((source[0] << 16) | (source[1] << 8) | source[2], source[3], source[4], BinaryPrimitives.ReadInt32BigEndian(source[5..]) & int.MaxValue);

    public static string TypeName(byte type) => type switch
    {
        Type.Data => "DATA",
        Type.Headers => "HEADERS",
        Type.Priority => "PRIORITY",
        Type.RstStream => "RST_STREAM",
        Type.Settings => "SETTINGS",
        Type.PushPromise => "PUSH_PROMISE",
        Type.Ping => "PING",
        Type.GoAway => "GOAWAY",
        Type.WindowUpdate => "WINDOW_UPDATE",
        Type.Continuation => "CONTINUATION",
        _ => $"frame type 0x{type:x2}",
    };

    public static class Type
    {
        public const byte Data = 0x0;
        public const byte Headers = 0x1;
        public const byte Priority = 0x2;
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
        public const ushort HeaderTableSize = 0x1;
        public const ushort EnablePush = 0x2;
        public const ushort MaxConcurrentStreams = 0x3;
        public const ushort InitialWindowSize = 0x4;
        public const ushort MaxFrameSize = 0x5;
        public const ushort MaxHeaderListSize = 0x6;
    }

    /// <summary>RFC 9113 7.</summary>
    public static class ErrorCode
    {
        public const int NoError = 0x0;
        public const int ProtocolError = 0x1;
        public const int InternalError = 0x2;
        public const int FlowControlError = 0x3;
        public const int SettingsTimeout = 0x4;
        public const int StreamClosed = 0x5;
        public const int FrameSizeError = 0x6;
        public const int RefusedStream = 0x7;
        public const int Cancel = 0x8;
        public const int CompressionError = 0x9;
        public const int ConnectError = 0xa;
        public const int EnhanceYourCalm = 0xb;
        public const int InadequateSecurity = 0xc;
        public const int Http11Required = 0xd;

        public static string Name(int code) => code switch
        {
            NoError => "NO_ERROR",
            ProtocolError => "PROTOCOL_ERROR",
            InternalError => "INTERNAL_ERROR",
            FlowControlError => "FLOW_CONTROL_ERROR",
            SettingsTimeout => "SETTINGS_TIMEOUT",
            StreamClosed => "STREAM_CLOSED",
            FrameSizeError => "FRAME_SIZE_ERROR",
            RefusedStream => "REFUSED_STREAM",
            Cancel => "CANCEL",
            CompressionError => "COMPRESSION_ERROR",
            ConnectError => "CONNECT_ERROR",
            EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            InadequateSecurity => "INADEQUATE_SECURITY",
            Http11Required => "HTTP_1_1_REQUIRED",
            _ => $"error 0x{code:x}",
        };
    }
}

/// <summary>
/// The worker broke HTTP/2 in a way that spoils the whole connection (RFC 9113 5.4.1): the client
/// sends GOAWAY with <see cref="ErrorCode"/> and closes it.
/// </summary>
internal sealed class Http2ConnectionException(int errorCode, string message) : Exception(message)
{
    public int ErrorCode { get; } = errorCode;
}
