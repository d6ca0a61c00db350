// The token question: a modal <dialog> with a password field, opened when the server wants a token
// or refused the one given; and the header's controls: "Enter token" (the question was dismissed)
// and "Forget token" (shown while one is stored).

import { setAttr, setText } from './dom.js';

const MESSAGES = {
  required: 'This server needs an API token. It is kept in this browser tab until the tab is closed.',
  refused: 'Token refused: the server did not accept it. Check it and enter it again.',
};

export class TokenDialog {
  /** @param {HTMLDialogElement} dialog @param {{enter: HTMLElement, forget: HTMLElement}} controls */
  constructor(dialog, { enter, forget }) {
    Object.assign(this, { dialog, enter, forget });
    this.form = dialog.querySelector('form');
    this.input = dialog.querySelector('input[type=password]');
    this.message = dialog.querySelector('.token-message');
    this.error = dialog.querySelector('.field-error');
    this.asking = false;
    // Dismissed (Esc) without an answer: the question stays open behind the header's button.
    dialog.addEventListener('close', () => {
      this.enter.hidden = !this.asking;
    });
    enter.addEventListener('click', () => this.open());
  }

  /** @param {'required'|'refused'} reason */
  ask(reason) {
    this.asking = true;
    setAttr(this.dialog, 'data-reason', reason);
    setText(this.message, MESSAGES[reason]);
    setText(this.error, '');
    this.input.value = '';
    this.open();
  }

  open() {
    this.enter.hidden = true;
    if (!this.dialog.open) this.dialog.showModal();
    this.input.focus();
  }

  /** Whether a token is stored: only then can it be forgotten. */
  showStored(stored) {
    this.forget.hidden = !stored;
  }

  bindSubmit(handler) {
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const token = this.input.value.trim();
      if (!token) {
        setText(this.error, 'Enter the token first.');
        this.input.setAttribute('aria-invalid', 'true');
        return;
      }
      this.input.removeAttribute('aria-invalid');
      this.input.value = ''; // the secret stays in no form field once used
      this.asking = false;
      this.dialog.close();
      handler(token);
    });
  }

  bindForget(handler) {
    this.forget.addEventListener('click', handler);
  }
}
