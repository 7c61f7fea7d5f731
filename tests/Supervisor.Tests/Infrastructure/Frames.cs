using System.Buffers.Binary;
using Supervisor.Proxy.Http2;

namespace Supervisor.Tests.Infrastructure;

/// <summary>HTTP/2 frames as octets, for the tests' scripted workers: well-formed or not, as a case needs.</summary>
internal static class Frames
{
    public static byte[] Frame(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[Http2Frame.HeaderLength + payload.Length];
        Http2Frame.WriteHeader(frame, payload.Length, type, flags, streamId);
        payload.CopyTo(frame.AsSpan(Http2Frame.HeaderLength));
        return frame;
    }

    public static byte[] Settings(params (ushort Id, uint Value)[] settings)
    {
        var payload = new byte[settings.Length * 6];
        for (var i = 0; i < settings.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(i * 6), settings[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(i * 6 + 2), settings[i].Value);
        }
        return Frame(Http2Frame.Type.Settings, 0, 0, payload);
    }

    public static byte[] SettingsAck() => Frame(Http2Frame.Type.Settings, Http2Frame.Flags.Ack, 0, []);

    public static byte[] Headers(int streamId, byte[] block, bool endStream = false, bool endHeaders = true) =>
        Frame(Http2Frame.Type.Headers, (byte)((endStream ? Http2Frame.Flags.EndStream : 0) | (endHeaders ? Http2Frame.Flags.EndHeaders : 0)), streamId, block);

    public static byte[] Continuation(int streamId, byte[] fragment, bool endHeaders = true) =>
        Frame(Http2Frame.Type.Continuation, endHeaders ? Http2Frame.Flags.EndHeaders : (byte)0, streamId, fragment);

    public static byte[] Data(int streamId, ReadOnlySpan<byte> data, bool endStream = false, int padding = -1)
    {
        if (padding < 0)
        {
            return Frame(Http2Frame.Type.Data, endStream ? Http2Frame.Flags.EndStream : (byte)0, streamId, data);
        }
        var payload = new byte[1 + data.Length + padding];
        payload[0] = (byte)padding;
        data.CopyTo(payload.AsSpan(1));
        return Frame(Http2Frame.Type.Data, (byte)((endStream ? Http2Frame.Flags.EndStream : 0) | Http2Frame.Flags.Padded), streamId, payload);
    }

    public static byte[] RstStream(int streamId, int errorCode) => Frame(Http2Frame.Type.RstStream, 0, streamId, Int32(errorCode));

    public static byte[] WindowUpdate(int streamId, int increment) => Frame(Http2Frame.Type.WindowUpdate, 0, streamId, Int32(increment));

    public static byte[] Ping(ReadOnlySpan<byte> opaque, bool ack = false) => Frame(Http2Frame.Type.Ping, ack ? Http2Frame.Flags.Ack : (byte)0, 0, opaque);

    public static byte[] GoAway(int lastStreamId, int errorCode)
    {
        var payload = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(payload, lastStreamId);
        BinaryPrimitives.WriteInt32BigEndian(payload.AsSpan(4), errorCode);
        return Frame(Http2Frame.Type.GoAway, 0, 0, payload);
    }

    /// <summary>A response head: :status and the given fields, as literals without indexing.</summary>
    public static byte[] Head(int status, params (string Name, string Value)[] fields)
    {
        var writer = new HpackWriter().Status(status);
        foreach (var (name, value) in fields)
        {
            writer.Literal(name, value);
        }
        return writer.ToArray();
    }

    /// <summary>Splits octets into the frames they hold: (type, flags, stream, payload).</summary>
    public static List<(byte Type, byte Flags, int StreamId, byte[] Payload)> Parse(ReadOnlySpan<byte> octets)
    {
        var frames = new List<(byte, byte, int, byte[])>();
        while (octets.Length >= Http2Frame.HeaderLength)
        {
            var (length, type, flags, streamId) = Http2Frame.ReadHeader(octets);
            frames.Add((type, flags, streamId, octets.Slice(Http2Frame.HeaderLength, length).ToArray()));
            octets = octets[(Http2Frame.HeaderLength + length)..];
        }
        return frames;
    }

    public static byte[] Int32(int value)
    {
        var octets = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(octets, value);
        return octets;
    }
}
