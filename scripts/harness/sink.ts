// A webhook receiver for the relay: records every delivered envelope so the run can prove
// at-least-once, in-order-per-aggregate delivery across relay kills.
import { verifySignature } from "../../src/outbox/webhook.ts";

export type Delivery = { id: string; aggregate: string; sequence: number };

export class WebhookSink {
  readonly deliveries: Delivery[] = [];
  badSignatures = 0;
  private server: ReturnType<typeof Bun.serve> | undefined;
  constructor(readonly secret: string) {}

  start(): string {
    this.server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        const body = await req.text();
        if (!verifySignature(this.secret, req.headers.get("paybridge-signature") ?? "", body)) {
          this.badSignatures++;
          return new Response("bad signature", { status: 401 });
        }
        const e = JSON.parse(body) as {
          id: string;
          aggregate_type: string;
          aggregate_id: string;
          sequence: number;
        };
        this.deliveries.push({
          id: e.id,
          aggregate: `${e.aggregate_type}:${e.aggregate_id}`,
          sequence: e.sequence,
        });
        return new Response(null, { status: 204 });
      },
    });
    return `http://127.0.0.1:${this.server.port}/hook`;
  }

  stop(): void {
    this.server?.stop(true);
  }
}
